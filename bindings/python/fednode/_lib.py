"""Loading libfednode and declaring its C prototypes (internal).

Every exported function gets argtypes and restype here, and an errcheck
that turns a negative status into the matching exception.  The test suite
checks that this table covers exactly the symbols of lib/libfednode.map.
"""
import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int,
                    c_int64, c_size_t, c_uint, c_uint32, c_uint64, c_void_p)

from . import errors

SONAME = "libfednode.so.1"
ABI_MAJOR = 1


def _candidates():
    env = os.environ.get("FEDNODE_LIBRARY")
    if env:
        return [env]
    # Straight from a source checkout: <repo>/build/lib next to this package.
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    found = []
    for build in ("build", "builddir"):
        path = os.path.join(repo, build, "lib", SONAME)
        if os.path.exists(path):
            found.append(path)
    return found + [SONAME]


def _load():
    tried = []
    for name in _candidates():
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            tried.append(f"{name}: {exc}")
    raise ImportError("cannot load libfednode (set FEDNODE_LIBRARY to its path); tried "
                      + "; ".join(tried))


lib = _load()


# --- types ---------------------------------------------------------------

class Error(Structure):
    _fields_ = [("code", c_int), ("klass", c_int), ("message", c_char_p)]


class Buf(Structure):
    _fields_ = [("ptr", c_void_p), ("size", c_size_t), ("reserved", c_size_t)]


class Progress(Structure):
    _fields_ = [("version", c_uint), ("stage", c_char_p),
                ("items_done", c_uint64), ("items_total", c_uint64),
                ("bytes_done", c_uint64), ("bytes_total", c_uint64),
                ("errors", c_uint64), ("elapsed", c_double)]


class InitOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("allocator", c_void_p),
                ("log_cb", c_void_p), ("log_payload", c_void_p),
                ("log_level", c_int)]


class ElementInfo(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("tag", c_uint32), ("vr", ctypes.c_char * 4),
                ("length", c_uint32), ("vm", c_size_t), ("depth", c_size_t),
                ("path", c_char_p), ("keyword", c_char_p)]


class InstanceInfo(Structure):
    VERSION = 1
    STRINGS = ("sop_class_uid", "sop_instance_uid", "study_instance_uid",
               "series_instance_uid", "transfer_syntax_uid", "modality", "patient_id",
               "patient_name", "patient_sex", "patient_age", "study_date",
               "study_description", "series_description", "body_part_examined",
               "manufacturer")
    _fields_ = ([("version", c_uint)] + [(n, c_char_p) for n in STRINGS] +
                [("series_number", c_int64), ("instance_number", c_int64),
                 ("rows", c_uint32), ("columns", c_uint32), ("frames", c_uint32),
                 ("burned_in_annotation", c_int), ("recognizable_visual_features", c_int),
                 ("file_size", c_uint64)])


LOG_CB = CFUNCTYPE(None, c_int, c_char_p, c_char_p, c_void_p)
PROGRESS_CB = CFUNCTYPE(c_int, POINTER(Progress), c_void_p)
ELEMENT_CB = CFUNCTYPE(c_int, POINTER(ElementInfo), c_void_p)
SCAN_INSTANCE_CB = CFUNCTYPE(c_int, c_char_p, c_void_p, POINTER(InstanceInfo), c_void_p)
SCAN_SKIP_CB = CFUNCTYPE(c_int, c_char_p, c_int, c_char_p, c_void_p)


class ScanOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("read_flags", c_uint), ("workers", c_uint),
                ("follow_symlinks", c_int), ("on_instance", SCAN_INSTANCE_CB),
                ("on_skip", SCAN_SKIP_CB), ("on_progress", PROGRESS_CB),
                ("progress_interval", c_double), ("cancel", c_void_p),
                ("payload", c_void_p)]


class ScanStats(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("files", c_uint64), ("instances", c_uint64),
                ("not_dicom", c_uint64), ("dicomdirs", c_uint64), ("errors", c_uint64),
                ("bytes", c_uint64), ("elapsed", c_double)]


DEID_CLEAN_CB = CFUNCTYPE(c_int, POINTER(Buf), c_char_p, c_char_p, c_char_p, c_void_p)


AUDIT_SINK_CB = CFUNCTYPE(None, c_char_p, c_void_p)


class RegistryStorage(Structure):
    """fdn_registry_storage, version 1 (host storage is not wired from
    Python yet: the binding always uses the registry's objects/ folder)."""
    VERSION = 1
    _fields_ = [("version", c_uint), ("put", c_void_p), ("get", c_void_p),
                ("del_", c_void_p), ("locate", c_void_p), ("ud", c_void_p)]


class RegistryOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("create", c_int), ("read_only", c_int),
                ("busy_timeout_ms", c_int), ("storage", c_void_p),
                ("audit_sink", AUDIT_SINK_CB), ("audit_payload", c_void_p),
                ("actor", c_char_p)]


class RegistryStats(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("patients", c_uint64), ("studies", c_uint64),
                ("series", c_uint64), ("instances", c_uint64),
                ("withdrawn_patients", c_uint64), ("bytes", c_uint64),
                ("cohorts", c_uint64), ("audit_records", c_uint64)]


class CohortMember(Structure):
    VERSION = 1
    STRINGS = ("sop_instance_uid", "series_instance_uid", "study_instance_uid",
               "patient", "modality", "sha256", "locator", "labels_json")
    _fields_ = [("version", c_uint)] + [(n, c_char_p) for n in STRINGS] + [("size", c_uint64)]


class DeidOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("options", c_uint),
                ("key", POINTER(ctypes.c_ubyte)), ("rules_json", c_char_p),
                ("clean", DEID_CLEAN_CB), ("clean_payload", c_void_p),
                ("allow_burned_in", c_int)]


class TensorInfo(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("name", c_char_p), ("dtype", c_int),
                ("ndim", c_size_t), ("shape", c_uint64 * 8), ("data", c_void_p),
                ("nbytes", c_size_t)]


class TrustPeerInfo(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("node_id", c_char_p), ("role", c_int),
                ("fingerprint", c_char_p), ("valid_until", c_char_p),
                ("ed25519_public", ctypes.c_ubyte * 32),
                ("x25519_public", ctypes.c_ubyte * 32)]


# Streams (common.h): fdn_read_cb, fdn_write_cb.
READ_CB = CFUNCTYPE(c_int, c_void_p, c_size_t, POINTER(c_size_t), c_void_p)
WRITE_CB = CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p)


class ObjectInfo(Structure):
    VERSION = 1
    ETAG_MAX = 127
    _fields_ = [("version", c_uint), ("size", c_uint64), ("mtime", c_int64),
                ("etag", ctypes.c_char * (ETAG_MAX + 1)), ("not_modified", c_int)]


class HttpsOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("ca_file", c_char_p), ("client_cert", c_char_p),
                ("client_key", c_char_p), ("proxy", c_char_p),
                ("connect_timeout_ms", c_uint), ("stall_timeout_ms", c_uint),
                ("retries", c_uint), ("backoff_ms", c_uint)]
class SealOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("kind", c_int), ("federation", c_char_p),
                ("round", c_uint64), ("compression_level", c_int), ("shuffle", c_uint),
                ("threads", c_uint), ("progress", PROGRESS_CB),
                ("progress_payload", c_void_p), ("cancel", c_void_p)]


class OpenOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("kind", c_int), ("federation", c_char_p),
                ("round", c_uint64), ("sender", c_char_p), ("sender_role", c_int),
                ("max_payload", c_uint64), ("when", c_int64), ("temp_dir", c_char_p),
                ("threads", c_uint), ("progress", PROGRESS_CB),
                ("progress_payload", c_void_p), ("cancel", c_void_p)]


class EnvelopeInfo(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("kind", c_int), ("round", c_uint64),
                ("federation", ctypes.c_char * 65), ("sender", ctypes.c_char * 65),
                ("sender_ed25519", ctypes.c_ubyte * 32), ("payload_bytes", c_uint64),
                ("stored_bytes", c_uint64), ("recipients", c_uint), ("compressed", c_int)]
# --- fedavg.h: manifest, trainer, client, coordinator ---------------------

class FederationOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("id", c_char_p), ("title", c_char_p),
                ("rounds", c_uint), ("quorum", c_uint), ("round_timeout_s", c_uint),
                ("strategy", c_void_p), ("update_form", c_int), ("local_epochs", c_uint),
                ("learning_rate", c_double), ("clip_norm", c_double),
                ("noise_multiplier", c_double), ("seed", c_uint64),
                ("model_json", c_char_p), ("train_json", c_char_p)]


class TrainConfig(Structure):
    _fields_ = [("version", c_uint), ("federation", c_char_p), ("round", c_uint64),
                ("local_epochs", c_uint), ("learning_rate", c_double),
                ("proximal_mu", c_double), ("seed", c_uint64), ("extra_json", c_char_p)]


TRAIN_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_char_p, POINTER(TrainConfig),
                     POINTER(c_void_p), POINTER(c_uint64), POINTER(Buf))
EVALUATE_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_char_p, POINTER(TrainConfig),
                        POINTER(c_uint64), POINTER(Buf))


class Trainer(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("train", TRAIN_CB), ("evaluate", EVALUATE_CB)]


class ClientOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("poll_interval_ms", c_uint), ("work_dir", c_char_p),
                ("progress", PROGRESS_CB), ("progress_payload", c_void_p),
                ("cancel", c_void_p)]


class CoordinatorOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("poll_interval_ms", c_uint),
                ("progress", PROGRESS_CB), ("progress_payload", c_void_p),
                ("cancel", c_void_p)]
class StrategyOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("strategy", c_int), ("server_lr", c_double),
                ("momentum", c_double), ("beta1", c_double), ("beta2", c_double),
                ("tau", c_double), ("trim", c_double), ("proximal_mu", c_double)]


# --- prototypes -------------------------------------------------------------

def _check_status(result, func, args):
    errors.raise_pending()
    if result < 0:
        raise errors.from_last(result, lib)
    return result


def _check_pending(result, func, args):
    errors.raise_pending()
    return result


STATUS = "status"  # int: 0 or a negative fdn_error_code

# name: (restype, argtypes)
PROTOTYPES = {
    # common.h
    "fdn_error_last": (POINTER(Error), []),
    "fdn_error_clear": (None, []),
    "fdn_strerror": (c_char_p, [c_int]),
    "fdn_buf_dispose": (None, [POINTER(Buf)]),
    "fdn_buf_set": (STATUS, [POINTER(Buf), c_char_p, c_size_t]),
    "fdn_log_set_callback": (STATUS, [LOG_CB, c_int, c_void_p]),
    "fdn_init_options_init": (STATUS, [POINTER(InitOptions), c_uint]),
    "fdn_init": (STATUS, []),
    "fdn_init_opts": (STATUS, [POINTER(InitOptions)]),
    "fdn_init_checked": (STATUS, [c_int, c_int]),
    "fdn_shutdown": (STATUS, []),
    "fdn_version": (None, [POINTER(c_int), POINTER(c_int), POINTER(c_int)]),
    "fdn_version_string": (c_char_p, []),
    "fdn_cancel_new": (STATUS, [POINTER(c_void_p)]),
    "fdn_cancel_free": (None, [c_void_p]),
    "fdn_cancel_request": (None, [c_void_p]),
    "fdn_cancel_requested": (c_int, [c_void_p]),
    "fdn_cancel_reset": (None, [c_void_p]),
    # dicom.h
    "fdn_tag_from_keyword": (STATUS, [POINTER(c_uint32), c_char_p]),
    "fdn_tag_keyword": (c_char_p, [c_uint32]),
    "fdn_tag_vr": (c_char_p, [c_uint32]),
    "fdn_dataset_read_file": (STATUS, [POINTER(c_void_p), c_char_p, c_uint]),
    "fdn_dataset_read_buffer": (STATUS, [POINTER(c_void_p), c_char_p, c_size_t, c_uint]),
    "fdn_dataset_new": (STATUS, [POINTER(c_void_p), c_char_p]),
    "fdn_dataset_clone": (STATUS, [POINTER(c_void_p), c_void_p]),
    "fdn_dataset_free": (None, [c_void_p]),
    "fdn_dataset_transfer_syntax": (c_char_p, [c_void_p]),
    "fdn_dataset_source": (c_char_p, [c_void_p]),
    "fdn_dataset_is_header_only": (c_int, [c_void_p]),
    "fdn_dataset_contains": (STATUS, [c_void_p, c_char_p]),
    "fdn_dataset_get_string": (STATUS, [POINTER(Buf), c_void_p, c_char_p]),
    "fdn_dataset_get_number": (STATUS, [POINTER(c_double), c_void_p, c_char_p, c_size_t]),
    "fdn_dataset_get_int": (STATUS, [POINTER(c_int64), c_void_p, c_char_p, c_size_t]),
    "fdn_dataset_get_bytes": (STATUS, [POINTER(Buf), c_void_p, c_char_p]),
    "fdn_dataset_get_element": (STATUS, [POINTER(ElementInfo), c_void_p, c_char_p]),
    "fdn_dataset_foreach": (STATUS, [c_void_p, c_char_p, c_uint, ELEMENT_CB, c_void_p]),
    "fdn_dataset_instance_info": (STATUS, [POINTER(InstanceInfo), c_void_p]),
    "fdn_dataset_to_json": (STATUS, [POINTER(Buf), c_void_p, c_uint]),
    "fdn_dataset_set_string": (STATUS, [c_void_p, c_char_p, c_char_p]),
    "fdn_dataset_set_bytes": (STATUS, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "fdn_dataset_remove": (STATUS, [c_void_p, c_char_p]),
    "fdn_dataset_write_file": (STATUS, [c_void_p, c_char_p, c_uint]),
    "fdn_dataset_write_buffer": (STATUS, [POINTER(Buf), c_void_p, c_uint]),
    "fdn_scan_options_init": (STATUS, [POINTER(ScanOptions), c_uint]),
    "fdn_scan": (STATUS, [POINTER(ScanStats), c_char_p, POINTER(ScanOptions)]),
    # deid.h
    "fdn_deid_key_bytes": (c_size_t, []),
    "fdn_deid_options_init": (STATUS, [POINTER(DeidOptions), c_uint]),
    "fdn_deid_profile_new": (STATUS, [POINTER(c_void_p), POINTER(DeidOptions)]),
    "fdn_deid_profile_free": (None, [c_void_p]),
    "fdn_deid_apply": (STATUS, [POINTER(c_void_p), c_void_p, c_void_p]),
    "fdn_deid_pseudonym_for": (STATUS, [POINTER(Buf), c_void_p, c_char_p]),
    "fdn_deid_verify": (STATUS, [POINTER(c_void_p), c_void_p, c_void_p, c_void_p]),
    "fdn_deid_report_count": (c_size_t, [c_void_p, c_int]),
    "fdn_deid_report_entry_count": (c_size_t, [c_void_p]),
    "fdn_deid_report_entry": (STATUS, [c_void_p, c_size_t, POINTER(c_char_p),
                                       POINTER(c_char_p)]),
    "fdn_deid_report_refusal": (c_char_p, [c_void_p]),
    "fdn_deid_report_leak_count": (c_size_t, [c_void_p]),
    "fdn_deid_report_leak": (c_char_p, [c_void_p, c_size_t]),
    "fdn_deid_report_free": (None, [c_void_p]),
    "fdn_deid_key_generate": (STATUS, [c_char_p]),
    "fdn_deid_key_load": (STATUS, [POINTER(ctypes.c_ubyte), c_size_t, c_char_p]),
    # registry.h
    "fdn_registry_schema_version": (c_int, []),
    "fdn_registry_options_init": (STATUS, [POINTER(RegistryOptions), c_uint]),
    "fdn_registry_open": (STATUS, [POINTER(c_void_p), c_char_p, POINTER(RegistryOptions)]),
    "fdn_registry_free": (None, [c_void_p]),
    "fdn_registry_add": (STATUS, [POINTER(c_int), c_void_p, c_void_p, c_uint]),
    "fdn_registry_begin": (STATUS, [c_void_p]),
    "fdn_registry_commit": (STATUS, [c_void_p]),
    "fdn_registry_rollback": (STATUS, [c_void_p]),
    "fdn_registry_stats_get": (STATUS, [POINTER(RegistryStats), c_void_p]),
    "fdn_registry_label": (STATUS, [c_void_p, c_int, c_char_p, c_char_p, c_char_p]),
    "fdn_registry_withdraw": (STATUS, [c_void_p, c_char_p, c_void_p, c_char_p, c_int]),
    "fdn_registry_grant": (STATUS, [c_void_p, c_char_p, c_void_p, c_char_p]),
    "fdn_registry_filter_check": (STATUS, [POINTER(c_int), c_char_p]),
    "fdn_registry_query_count": (STATUS, [POINTER(c_uint64), c_void_p, c_char_p]),
    "fdn_cohort_create": (STATUS, [c_char_p, c_void_p, c_char_p, c_char_p]),
    "fdn_cohort_iter_new": (STATUS, [POINTER(c_void_p), c_void_p, c_char_p, c_char_p]),
    "fdn_cohort_iter_next": (STATUS, [POINTER(CohortMember), c_void_p]),
    "fdn_cohort_iter_free": (None, [c_void_p]),
    "fdn_cohort_export": (STATUS, [POINTER(Buf), c_void_p, c_char_p, c_int]),
    "fdn_registry_audit": (STATUS, [c_void_p, c_char_p, c_char_p]),
    "fdn_registry_verify": (STATUS, [POINTER(Buf), c_void_p]),
    "fdn_registry_audit_export": (STATUS, [POINTER(Buf), c_void_p, c_uint64]),
    # model.h
    "fdn_dtype_size": (c_size_t, [c_int]),
    "fdn_dtype_name": (c_char_p, [c_int]),
    "fdn_dtype_from_name": (STATUS, [POINTER(c_int), c_char_p]),
    "fdn_model_max_dims": (c_size_t, []),
    "fdn_model_header_max": (c_uint64, []),
    "fdn_model_new": (STATUS, [POINTER(c_void_p)]),
    "fdn_model_read_file": (STATUS, [POINTER(c_void_p), c_char_p, c_uint]),
    "fdn_model_read_buffer": (STATUS, [POINTER(c_void_p), c_char_p, c_size_t, c_uint]),
    "fdn_model_free": (None, [c_void_p]),
    "fdn_model_tensor_count": (c_size_t, [c_void_p]),
    "fdn_model_tensor": (STATUS, [POINTER(TensorInfo), c_void_p, c_size_t]),
    "fdn_model_find": (STATUS, [POINTER(c_size_t), c_void_p, c_char_p]),
    "fdn_model_add_tensor": (STATUS, [c_void_p, c_char_p, c_int, c_size_t,
                                      POINTER(c_uint64), c_char_p, c_size_t]),
    "fdn_model_set_metadata": (STATUS, [c_void_p, c_char_p, c_char_p]),
    "fdn_model_get_metadata": (STATUS, [POINTER(c_char_p), c_void_p, c_char_p]),
    "fdn_model_metadata_count": (c_size_t, [c_void_p]),
    "fdn_model_metadata_entry": (STATUS, [POINTER(c_char_p), POINTER(c_char_p),
                                          c_void_p, c_size_t]),
    "fdn_model_write_file": (STATUS, [c_void_p, c_char_p]),
    "fdn_model_write_buffer": (STATUS, [POINTER(Buf), c_void_p]),
    # exchange.h
    "fdn_node_id_max": (c_size_t, []),
    "fdn_public_key_bytes": (c_size_t, []),
    "fdn_identity_generate": (STATUS, [POINTER(c_void_p), c_char_p]),
    "fdn_identity_save": (STATUS, [c_void_p, c_char_p, c_char_p]),
    "fdn_identity_load": (STATUS, [POINTER(c_void_p), c_char_p, c_char_p]),
    "fdn_identity_free": (None, [c_void_p]),
    "fdn_identity_node_id": (c_char_p, [c_void_p]),
    "fdn_identity_public": (STATUS, [POINTER(Buf), c_void_p, c_char_p]),
    "fdn_identity_fingerprint": (STATUS, [POINTER(Buf), c_void_p]),
    "fdn_trust_open": (STATUS, [POINTER(c_void_p), c_char_p]),
    "fdn_trust_add": (STATUS, [c_void_p, c_char_p, c_int, c_char_p]),
    "fdn_trust_remove": (STATUS, [c_void_p, c_char_p]),
    "fdn_trust_count": (c_size_t, [c_void_p]),
    "fdn_trust_peer": (STATUS, [POINTER(TrustPeerInfo), c_void_p, c_size_t]),
    "fdn_trust_find_by_key": (STATUS, [POINTER(c_size_t), c_void_p, c_char_p, c_int64]),
    "fdn_trust_save": (STATUS, [c_void_p]),
    "fdn_trust_free": (None, [c_void_p]),
    # transport.h
    "fdn_transport_key_valid": (c_int, [c_char_p]),
    "fdn_https_options_init": (STATUS, [POINTER(HttpsOptions), c_uint]),
    "fdn_transport_new": (STATUS, [POINTER(c_void_p), c_void_p, c_void_p]),
    "fdn_transport_dir_new": (STATUS, [POINTER(c_void_p), c_char_p]),
    "fdn_transport_https_new": (STATUS, [POINTER(c_void_p), c_char_p, POINTER(HttpsOptions)]),
    "fdn_transport_open_url": (STATUS, [POINTER(c_void_p), c_char_p, POINTER(HttpsOptions)]),
    "fdn_transport_free": (None, [c_void_p]),
    "fdn_transport_set_cancel": (STATUS, [c_void_p, c_void_p]),
    "fdn_transport_put_buffer": (STATUS, [c_void_p, c_char_p, c_char_p, c_size_t,
                                          POINTER(ObjectInfo)]),
    "fdn_transport_put_file": (STATUS, [c_void_p, c_char_p, c_char_p, POINTER(ObjectInfo)]),
    "fdn_transport_put_stream": (STATUS, [c_void_p, c_char_p, READ_CB, c_void_p, c_uint64,
                                          POINTER(ObjectInfo)]),
    "fdn_transport_get_buffer": (STATUS, [c_void_p, c_char_p, POINTER(Buf), c_size_t,
                                          c_char_p, POINTER(ObjectInfo)]),
    "fdn_transport_get_file": (STATUS, [c_void_p, c_char_p, c_char_p, c_char_p,
                                        POINTER(ObjectInfo)]),
    "fdn_transport_get_stream": (STATUS, [c_void_p, c_char_p, WRITE_CB, c_void_p, c_char_p,
                                          POINTER(ObjectInfo)]),
    "fdn_transport_head": (STATUS, [c_void_p, c_char_p, POINTER(ObjectInfo)]),
    "fdn_transport_delete": (STATUS, [c_void_p, c_char_p]),
    "fdn_envelope_kind_name": (c_char_p, [c_int]),
    "fdn_envelope_kind_from_name": (STATUS, [POINTER(c_int), c_char_p]),
    "fdn_seal_options_init": (STATUS, [POINTER(SealOptions), c_uint]),
    "fdn_open_options_init": (STATUS, [POINTER(OpenOptions), c_uint]),
    "fdn_envelope_seal_stream": (STATUS, [READ_CB, c_void_p, WRITE_CB, c_void_p, c_void_p,
                                          c_void_p, POINTER(c_char_p), c_size_t,
                                          POINTER(SealOptions)]),
    "fdn_envelope_seal_fd": (STATUS, [c_int, c_int, c_void_p, c_void_p, POINTER(c_char_p),
                                      c_size_t, POINTER(SealOptions)]),
    "fdn_envelope_seal_buffer": (STATUS, [POINTER(Buf), c_char_p, c_size_t, c_void_p,
                                          c_void_p, POINTER(c_char_p), c_size_t,
                                          POINTER(SealOptions)]),
    "fdn_envelope_open_stream": (STATUS, [POINTER(EnvelopeInfo), READ_CB, c_void_p,
                                          WRITE_CB, c_void_p, c_void_p, c_void_p,
                                          POINTER(OpenOptions)]),
    "fdn_envelope_open_fd": (STATUS, [POINTER(EnvelopeInfo), c_int, c_int, c_void_p,
                                      c_void_p, POINTER(OpenOptions)]),
    "fdn_envelope_open_file": (STATUS, [POINTER(EnvelopeInfo), c_char_p, c_char_p,
                                        c_void_p, c_void_p, POINTER(OpenOptions)]),
    "fdn_envelope_open_buffer": (STATUS, [POINTER(EnvelopeInfo), POINTER(Buf), c_char_p,
                                          c_size_t, c_void_p, c_void_p,
                                          POINTER(OpenOptions)]),
    "fdn_envelope_inspect": (STATUS, [POINTER(EnvelopeInfo), c_char_p, c_size_t]),
    # fedavg.h: manifest, client, coordinator
    "fdn_federation_options_init": (STATUS, [POINTER(FederationOptions), c_uint]),
    "fdn_federation_create": (STATUS, [POINTER(c_void_p), POINTER(FederationOptions),
                                       c_void_p, c_void_p, POINTER(c_char_p), c_size_t]),
    "fdn_federation_parse": (STATUS, [POINTER(c_void_p), c_char_p]),
    "fdn_federation_free": (None, [c_void_p]),
    "fdn_federation_json": (STATUS, [POINTER(Buf), c_void_p]),
    "fdn_federation_id": (c_char_p, [c_void_p]),
    "fdn_federation_digest": (c_char_p, [c_void_p]),
    "fdn_federation_rounds": (c_uint, [c_void_p]),
    "fdn_federation_publish": (STATUS, [c_void_p, c_void_p, c_void_p, c_void_p]),
    "fdn_federation_fetch": (STATUS, [POINTER(c_void_p), c_void_p, c_char_p, c_void_p,
                                      c_void_p]),
    "fdn_federation_approve": (STATUS, [c_void_p, c_void_p, c_char_p]),
    "fdn_federation_approved": (c_int, [c_void_p, c_void_p]),
    "fdn_client_options_init": (STATUS, [POINTER(ClientOptions), c_uint]),
    "fdn_client_new": (STATUS, [POINTER(c_void_p), c_void_p, c_void_p, c_void_p, c_void_p,
                                c_char_p, c_char_p, POINTER(Trainer), c_void_p,
                                POINTER(ClientOptions)]),
    "fdn_client_free": (None, [c_void_p]),
    "fdn_client_step": (STATUS, [c_void_p, POINTER(c_int)]),
    "fdn_client_run": (STATUS, [c_void_p]),
    "fdn_client_round": (c_uint64, [c_void_p]),
    "fdn_client_model": (STATUS, [POINTER(c_void_p), c_void_p]),
    "fdn_coordinator_options_init": (STATUS, [POINTER(CoordinatorOptions), c_uint]),
    "fdn_coordinator_new": (STATUS, [POINTER(c_void_p), c_void_p, c_void_p, c_void_p,
                                     c_void_p, c_void_p, c_char_p,
                                     POINTER(CoordinatorOptions)]),
    "fdn_coordinator_free": (None, [c_void_p]),
    "fdn_coordinator_step": (STATUS, [c_void_p, POINTER(c_int)]),
    "fdn_coordinator_run": (STATUS, [c_void_p]),
    "fdn_coordinator_round": (c_uint64, [c_void_p]),
    "fdn_coordinator_model": (STATUS, [POINTER(c_void_p), c_void_p]),
    "fdn_coordinator_results": (STATUS, [POINTER(Buf), c_void_p]),
    # fedavg.h
    "fdn_strategy_name": (c_char_p, [c_int]),
    "fdn_strategy_from_name": (STATUS, [POINTER(c_int), c_char_p]),
    "fdn_strategy_options_init": (STATUS, [POINTER(StrategyOptions), c_uint]),
    "fdn_aggregator_new": (STATUS, [POINTER(c_void_p), c_void_p, c_void_p,
                                    POINTER(StrategyOptions)]),
    "fdn_aggregator_free": (None, [c_void_p]),
    "fdn_aggregator_add": (STATUS, [c_void_p, c_void_p, c_double, c_int]),
    "fdn_aggregator_add_file": (STATUS, [c_void_p, c_char_p, c_double, c_int]),
    "fdn_aggregator_add_batch": (STATUS, [c_void_p, c_size_t, POINTER(c_void_p),
                                          POINTER(c_double), POINTER(c_int), POINTER(c_int)]),
    "fdn_aggregator_add_files": (STATUS, [c_void_p, c_size_t, POINTER(c_char_p),
                                          POINTER(c_double), POINTER(c_int), POINTER(c_int)]),
    "fdn_aggregator_count": (c_size_t, [c_void_p]),
    "fdn_aggregator_finish": (STATUS, [c_void_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "fdn_aggregator_finish_file": (STATUS, [c_void_p, c_char_p, POINTER(c_void_p)]),
}


def _declare():
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        if restype == STATUS:
            fn.restype = c_int
            fn.errcheck = _check_status
        else:
            fn.restype = restype
            # The error functions themselves must not re-raise.
            if not name.startswith("fdn_error") and name != "fdn_strerror":
                fn.errcheck = _check_pending


_declare()


def take_buf(buf):
    """Copies an fdn_buf's bytes out and releases it."""
    try:
        return ctypes.string_at(buf.ptr, buf.size) if buf.ptr else b""
    finally:
        lib.fdn_buf_dispose(ctypes.byref(buf))
