/*
 * fednode: the command-line host of libfednode.
 *
 *   fednode [--verbose] COMMAND [ARGS...]
 *   fednode COMMAND --help
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fednode/fednode.h>

#include "cli.h"

static const struct cli_command commands[] = {
	{ "demo", "run a whole federation of synthetic hospitals on this machine",
	  "usage: fednode demo [--sites N] [--patients P] [--rounds R] [--epochs E]\n"
	  "                    [--lr X] [--strategy NAME] [--seed S] [--out DIR] [--https]\n\n"
	  "Generates N (default 3) hospitals' synthetic CT studies with realistic\n"
	  "patient data and a labelled finding (a lung nodule, present or not; the\n"
	  "sites differ in scanner, noise and prevalence), imports each through\n"
	  "de-identification into its own registry, creates and approves a\n"
	  "federation, and runs the coordinator and the sites as separate processes\n"
	  "(fednode coordinator, fednode node) over a store folder for R (default 25)\n"
	  "rounds, one line per round.  Then trains the same model on the pooled data\n"
	  "for comparison, writes report.md and report.svg, and verifies every\n"
	  "registry's audit chain.  Everything goes into DIR (default\n"
	  "./fednode-demo-DATE-TIME); nothing outside it is touched.\n\n"
	  "With --https the store is nginx on 127.0.0.1 instead of a folder: the\n"
	  "demo makes a CA and a client certificate per node (TLS 1.3, certificates\n"
	  "required, each site may write only its own updates) and stops nginx at\n"
	  "the end; it needs nginx (nginx-light) and openssl.\n\n"
	  "Defaults: 400 patients per site (120 held out for testing), 1 local\n"
	  "epoch, learning rate 0.5, strategy fedavg, seed 42.\n\n"
	  "Exit status: 0 success, 1 failure (the logs are in DIR/logs), 2 bad usage.\n",
	  cmd_demo },
	{ "version", "print the tool and library versions",
	  "usage: fednode version\n\n"
	  "Prints the version of the fednode tool and of the libfednode it runs on.\n",
	  cmd_version },
	{ "dump", "print every element of a DICOM file, or its DICOM JSON",
	  "usage: fednode dump [--json] [--header-only] FILE\n\n"
	  "Prints every element of the DICOM file FILE, sequences included (their\n"
	  "items indented), one per line: tag, VR, keyword, value, and after '#'\n"
	  "the value multiplicity and length.  Text is shown in UTF-8 between [ ],\n"
	  "cut after 64 characters; binary values as their first 16 bytes in hex\n"
	  "and their length.\n\n"
	  "Options:\n"
	  "  --json         print the dataset in the DICOM JSON Model (PS3.18 F.2)\n"
	  "                 instead; binary values are base64 (InlineBinary)\n"
	  "  --header-only  do not read the Pixel Data (faster for large images)\n\n"
	  "Exit status: 0 success, 1 the file cannot be read or a value cannot be\n"
	  "decoded (it is shown as <error: ...>), 2 bad usage.\n",
	  cmd_dump },
	{ "scan", "find the DICOM files under a folder and summarise them",
	  "usage: fednode scan [--workers N] [--full] [--quiet] DIR\n\n"
	  "Reads every file under DIR (following symbolic links) as DICOM and\n"
	  "prints the number of patients (distinct Patient IDs), studies, series\n"
	  "and instances per modality, the files that are not DICOM, the files\n"
	  "that could not be read with the reason (the first 20), and the speed.\n"
	  "While it runs, a progress line is shown on stderr when stderr is a\n"
	  "terminal.  Ctrl-C stops the scan and prints what was found so far\n"
	  "(exit status 130); a second Ctrl-C ends the program at once.\n\n"
	  "Options:\n"
	  "  --workers N  parsing threads (default 0: one per processor)\n"
	  "  --full       read whole files, Pixel Data included, so that errors\n"
	  "               in it are found too (default: read only the summary\n"
	  "               elements before Pixel Data)\n"
	  "  --quiet      no progress line\n\n"
	  "Exit status: 0 the scan finished (even if some files could not be\n"
	  "read), 1 DIR cannot be scanned, 2 bad usage, 130 interrupted.\n",
	  cmd_scan },
	{ "deid", "de-identify DICOM files (PS3.15 confidentiality profile)",
	  "usage: fednode deid [--option NAME]... [--rules FILE] [--allow-burned-in]\n"
	  "                    [--workers N] [--quiet] --key-file KEY IN OUT\n"
	  "       fednode deid --init-key KEY\n"
	  "       fednode deid --pseudonym ID --key-file KEY\n\n"
	  "De-identifies with the DICOM PS3.15 Basic Application Level Confidentiality\n"
	  "Profile and the options given.  IN a file: writes the result to the file\n"
	  "OUT.  IN a folder: de-identifies every DICOM file under it into the folder\n"
	  "OUT with the same layout (subfolders are created; file and folder names\n"
	  "are kept as they are, so rename them first if they identify anyone).  Files\n"
	  "that are not DICOM are not copied.  Every output is written atomically.\n"
	  "Patient ID and Name become a keyed pseudonym, UIDs keyed 2.25 UIDs: the\n"
	  "same site key gives the same values in every file and every run.\n\n"
	  "Images flagged with burned-in annotation or recognizable visual features,\n"
	  "or of a kind that usually has text in the pixels (ultrasound, secondary\n"
	  "capture, scanned documents, photographs) without Burned In Annotation NO,\n"
	  "are refused and listed, unless --allow-burned-in is given.\n\n"
	  "Options:\n"
	  "  --key-file KEY     the site key (32 bytes, mode 0600); never printed\n"
	  "  --init-key KEY     create a new random site key file KEY (mode 0600);\n"
	  "                     an existing file is never overwritten\n"
	  "  --pseudonym ID     print the pseudonym of Patient ID ID (to find a\n"
	  "                     patient's data when consent is withdrawn)\n"
	  "  --option NAME      a PS3.15 Table E.1-1 option, repeatable: retain-safe-\n"
	  "                     private, retain-uids, retain-device-identity,\n"
	  "                     retain-institution-identity, retain-patient-\n"
	  "                     characteristics, retain-long-full-dates,\n"
	  "                     retain-long-modified-dates, clean-descriptors,\n"
	  "                     clean-structured-content, clean-graphics\n"
	  "  --rules FILE       site rules, JSON: {\"rules\": [{\"tag\": \"PatientAge\",\n"
	  "                     \"action\": \"keep\"}, ...]} (actions keep, remove,\n"
	  "                     empty, dummy, clean, pseudonymize)\n"
	  "  --allow-burned-in  de-identify the images that would be refused\n"
	  "  --workers N        reading threads (default 0: one per processor)\n"
	  "  --quiet            no progress line (shown on stderr when a terminal)\n\n"
	  "Free text that the profile cleans (action C) is emptied: this tool has no\n"
	  "text cleaner.\n\n"
	  "Exit status: 0 every DICOM file was de-identified, 1 a file was refused or\n"
	  "failed (they are listed) or the key is missing, 2 bad usage, 130\n"
	  "interrupted.\n",
	  cmd_deid },
	{ "import", "de-identify DICOM files and add them to a registry",
	  "usage: fednode import [--create] [--option NAME]... [--rules FILE]\n"
	  "                      [--allow-burned-in] [--workers N] [--quiet]\n"
	  "                      --registry DIR --key-file KEY PATH...\n\n"
	  "Reads every DICOM file under each PATH (a file or a folder), de-identifies\n"
	  "it as 'fednode deid' does, and stores and registers it in the registry in\n"
	  "the folder DIR.  Instances already registered with the same content are\n"
	  "counted as already present.  Additions are committed in batches of 500\n"
	  "instances; Ctrl-C commits what was imported so far and stops (exit status\n"
	  "130): nothing is ever half written.  A progress line is shown on stderr\n"
	  "when it is a terminal.  The summary counts the files imported, already\n"
	  "present, refused (listed with the reason), not DICOM, and the errors\n"
	  "(listed).\n\n"
	  "Options:\n"
	  "  --registry DIR     the registry folder\n"
	  "  --create           create the registry if it does not exist (otherwise a\n"
	  "                     missing registry is an error)\n"
	  "  --key-file KEY     the site key (see fednode deid --init-key)\n"
	  "  --option NAME      a PS3.15 option, repeatable (as for fednode deid)\n"
	  "  --rules FILE       site de-identification rules, JSON (as for fednode deid)\n"
	  "  --allow-burned-in  import the images that would be refused\n"
	  "  --workers N        reading threads (default 0: one per processor)\n"
	  "  --quiet            no progress line\n\n"
	  "Exit status: 0 every DICOM file was imported or already present, 1 a file\n"
	  "was refused or failed (they are listed) or the registry or key is missing,\n"
	  "2 bad usage, 130 interrupted.\n",
	  cmd_import },
	{ "registry", "look into and manage a registry: cohorts, consent, audit",
	  "usage: fednode registry DIR SUBCOMMAND [ARGS...]\n\n"
	  "Subcommands:\n"
	  "  stats                         counts of patients, studies, series,\n"
	  "                                instances, cohorts and audit records\n"
	  "  query FILTER                  the number of instances (of consenting\n"
	  "                                patients) that match FILTER\n"
	  "  label LEVEL UID KEY VALUE     set a label on a study, series or instance\n"
	  "                                (LEVEL study|series|instance); an empty\n"
	  "                                VALUE removes it\n"
	  "  cohort create NAME FILTER     freeze the instances matching FILTER as\n"
	  "                                cohort NAME; prints members and snapshot hash\n"
	  "  cohort list                   name, members, creation time and snapshot\n"
	  "                                hash of every cohort\n"
	  "  cohort show NAME              the members of consenting patients\n"
	  "  withdraw PATIENT [--key-file KEY] --reason TEXT [--purge]\n"
	  "                                record a consent withdrawal.  PATIENT is the\n"
	  "                                pseudonym, or with --key-file the original\n"
	  "                                Patient ID (never stored).  --purge deletes\n"
	  "                                the patient's files too\n"
	  "  export COHORT [--format json|csv] [--output FILE]\n"
	  "                                the cohort's manifest for training (default\n"
	  "                                json, to stdout)\n"
	  "  verify                        check the audit chain and every stored file\n"
	  "  audit [--since N]             the audit records from number N on, one JSON\n"
	  "                                object per line\n\n"
	  "Filters: field op value joined with AND, OR, NOT and parentheses, e.g.\n"
	  "  modality = 'CT' AND age BETWEEN 40 AND 70 AND label.finding = 'nodule'\n"
	  "Fields: modality body_part manufacturer study_date sex age rows columns\n"
	  "frames sop_class series_description study_description label.KEY; ops\n"
	  "= != < <= > >= IN BETWEEN; strings in single quotes.\n\n"
	  "Exit status: 0 success (verify: intact), 1 failure (verify: the problem is\n"
	  "printed), 2 bad usage.\n",
	  cmd_registry },
	{ "push", "store one file as an object in a federation store",
	  "usage: fednode push [--ca FILE] [--cert FILE --key FILE] [--proxy URL]\n"
	  "                    URL KEY FILE\n\n"
	  "Stores FILE (- for standard input, streamed) under KEY in the store at URL,\n"
	  "replacing any object there; readers see the old object or the new one,\n"
	  "never a mix.  Prints the size and entity tag of what was stored.\n\n"
	  "URL is file:///absolute/folder (a local or shared folder) or\n"
	  "https://host[:port][/path] (a WebDAV-style server such as nginx; see\n"
	  "doc/transport-nginx.md).  KEY is 1 to 16 '/'-separated segments of\n"
	  "A-Z a-z 0-9 . _ - (not '.' or '..'), e.g. fed-1/rounds/3/update-site-a.fdne.\n\n"
	  "HTTPS options (the server's certificate and name are always verified):\n"
	  "  --ca FILE     PEM bundle of the CAs to trust (default: the system's)\n"
	  "  --cert FILE   PEM client certificate (for servers that require one)\n"
	  "  --key FILE    PEM private key of --cert (unencrypted)\n"
	  "  --proxy URL   proxy to use; \"\" for none (default: https_proxy,\n"
	  "                HTTPS_PROXY, all_proxy and no_proxy from the environment)\n\n"
	  "Failures that may pass (no connection, timeouts, HTTP 408/429/5xx) are\n"
	  "retried with backoff.  Ctrl-C stops the transfer and leaves the store as\n"
	  "it was.\n\n"
	  "Exit status: 0 stored, 1 failed, 2 bad usage, 130 interrupted.\n",
	  cmd_push },
	{ "pull", "fetch one object from a federation store into a file",
	  "usage: fednode pull [--ca FILE] [--cert FILE --key FILE] [--proxy URL]\n"
	  "                    [--if-none-match ETAG] URL KEY FILE\n\n"
	  "Fetches the object KEY from the store at URL into FILE (- for standard\n"
	  "output), written to a temporary file beside it and renamed when complete:\n"
	  "FILE is never left half written.  Prints the size and entity tag (to\n"
	  "standard error with -).  A broken HTTPS download goes on where it stopped.\n\n"
	  "  --if-none-match ETAG  when the object still has this entity tag (from\n"
	  "                        an earlier push or pull), transfer nothing, leave\n"
	  "                        FILE as it is and print 'not modified'\n\n"
	  "URL, KEY and the HTTPS options are as for fednode push.\n\n"
	  "Exit status: 0 fetched or not modified, 1 failed (e.g. no such object),\n"
	  "2 bad usage, 130 interrupted.\n",
	  cmd_pull },
	{ "keygen", "create a node identity (signing and encryption keys)",
	  "usage: fednode keygen --id NODE [--out FILE] [--public-out FILE]\n"
	  "                      [--passphrase-file F] [--valid-until DATE]\n\n"
	  "Creates a new identity for node NODE: an Ed25519 signing key and an X25519\n"
	  "key for receiving envelopes.  The key file (default NODE.key) is created\n"
	  "with mode 0600 and never overwritten; the public text (default FILE.pub)\n"
	  "is what peers add with 'fednode trust add'.  Prints both paths and the\n"
	  "fingerprint, which peers compare out of band before trusting the key.\n\n"
	  "The key file is encrypted with a passphrase read from the first line of\n"
	  "--passphrase-file F, or from the environment variable FEDNODE_PASSPHRASE;\n"
	  "without either it is stored unencrypted.  A passphrase is never taken\n"
	  "from the command line.\n\n"
	  "Options:\n"
	  "  --valid-until DATE  put an end date (YYYY-MM-DD) into the public text\n\n"
	  "Exit status: 0 success, 1 failure (e.g. the file exists), 2 bad usage.\n",
	  cmd_keygen },
	{ "trust", "manage the trust store: the peers whose keys this node accepts",
	  "usage: fednode trust add --trust FILE --role site|coordinator\n"
	  "                         [--valid-until DATE] PUBLIC\n"
	  "       fednode trust list --trust FILE\n"
	  "       fednode trust remove --trust FILE NODE\n\n"
	  "The trust store FILE (created when missing) lists the peer keys this node\n"
	  "accepts envelopes from and seals envelopes to.  'add' trusts the public\n"
	  "text in the file PUBLIC (from 'fednode keygen') with a role and an optional\n"
	  "end date (the key is valid through that UTC day); a node may have several\n"
	  "keys (rotation).  'list' prints node, role, fingerprint and end date of\n"
	  "every key; 'remove' forgets every key of NODE.\n\n"
	  "Exit status: 0 success, 1 failure, 2 bad usage.\n",
	  cmd_trust },
	{ "seal", "sign and encrypt a file into an envelope for some nodes",
	  "usage: fednode seal --identity KEYFILE [--trust FILE] --to NODE[,NODE...]\n"
	  "                    --kind KIND --federation FED --round N [--compress LEVEL]\n"
	  "                    [--passphrase-file F] IN OUT\n\n"
	  "Seals the file IN into the envelope OUT (written under a temporary name and\n"
	  "renamed when complete): signed with the identity in KEYFILE, encrypted for\n"
	  "every currently valid key of each NODE in the trust store (your own node id\n"
	  "means your own key).  KIND is data, manifest, global, update, result or\n"
	  "latest; the receiver checks KIND, FED and N, so an envelope cannot be\n"
	  "replayed elsewhere.  --compress 1..9 compresses (byte shuffle + zlib) the\n"
	  "chunks where that pays.  The passphrase of KEYFILE comes from\n"
	  "--passphrase-file or FEDNODE_PASSPHRASE.\n\n"
	  "Exit status: 0 success, 1 failure, 2 bad usage.\n",
	  cmd_seal },
	{ "open", "verify and decrypt an envelope addressed to this node",
	  "usage: fednode open --identity KEYFILE --trust FILE --kind KIND\n"
	  "                    --federation FED --round N [--from NODE]\n"
	  "                    [--passphrase-file F] IN OUT\n\n"
	  "Opens the envelope IN into the file OUT (mode 0600).  The sender must be in\n"
	  "the trust store with a valid key (and be NODE with --from); the envelope\n"
	  "must be of kind KIND for round N of federation FED and be addressed to the\n"
	  "identity in KEYFILE.  OUT appears only once the signature and every byte\n"
	  "have been verified; on any failure nothing is written.  Prints the sender\n"
	  "and the sizes.\n\n"
	  "Exit status: 0 verified and written, 1 rejected or failed, 2 bad usage.\n",
	  cmd_open },
	{ "inspect", "show an envelope's header, unverified",
	  "usage: fednode inspect FILE\n\n"
	  "Prints what the header of the envelope FILE claims: kind, federation,\n"
	  "round, sender and number of recipient keys.  NOTHING is verified (anyone\n"
	  "can write any header): use 'fednode open' for that.\n\n"
	  "Exit status: 0 success, 1 not an envelope, 2 bad usage.\n",
	  cmd_inspect },
	{ "federation", "create, show or approve a federation's manifest",
	  "usage: fednode federation create STORE-OPTIONS --sites A,B,... --rounds N\n"
	  "                 [--quorum Q] [--round-timeout SECONDS] [--strategy NAME]\n"
	  "                 [--server-lr X] [--momentum X] [--mu X] [--form weights|delta]\n"
	  "                 [--epochs E] [--lr X] [--clip X] [--noise X] [--seed N]\n"
	  "                 [--title TEXT] [--train-json FILE] [--model-json FILE] [--out FILE]\n"
	  "       fednode federation show STORE-OPTIONS [--format json]\n"
	  "       fednode federation approve STORE-OPTIONS --registry DIR [--note TEXT]\n\n"
	  "STORE-OPTIONS: --store URL --identity KEYFILE --trust FILE --id FEDERATION\n"
	  "               [--passphrase-file F] [--ca F] [--cert F --key F] [--proxy URL]\n\n"
	  "create (the coordinator): writes a manifest for the sites listed (each must\n"
	  "be in the trust store with the site role), signs it and publishes it in the\n"
	  "store as FEDERATION/manifest.fdne; prints its digest.  Strategies: fedavg,\n"
	  "fedavgm, fedadagrad, fedadam, fedyogi, fedprox, median, trimmed-mean.\n"
	  "show (a site): fetches and verifies the manifest and prints it: roster with\n"
	  "key fingerprints, strategy, rounds, what the trainer is told.\n"
	  "approve (a site): as show, then records the approval of exactly this\n"
	  "manifest in the registry's audit log; a node trains only for an approved\n"
	  "manifest.\n\n"
	  "Exit status: 0 success, 1 failure, 2 bad usage.\n",
	  cmd_federation },
	{ "coordinator", "run a federation's coordinator until its last round",
	  "usage: fednode coordinator STORE-OPTIONS --state DIR [--manifest FILE]\n"
	  "                           [--initial MODEL] [--poll-ms N] [--out FILE]\n\n"
	  "Publishes each round's global model, collects and verifies the sites'\n"
	  "updates, aggregates them with the manifest's strategy and closes the round\n"
	  "(all sites in, or the quorum after the deadline), until the last round.\n"
	  "DIR keeps a checkpoint per round: run the same command again after a crash\n"
	  "and it resumes.  MODEL is the initial safetensors model (default: the demo\n"
	  "model).  FILE is the manifest as federation create --out wrote it; without\n"
	  "it the manifest is fetched from the store, which needs the coordinator's\n"
	  "own key in its trust store.  --out writes the final model.  One line per\n"
	  "round on stdout;\n"
	  "Ctrl-C stops (exit status 130) and a later run resumes.\n",
	  cmd_coordinator },
	{ "node", "take part in a federation as a site until it ends",
	  "usage: fednode node STORE-OPTIONS --registry DIR --cohort NAME\n"
	  "                    [--trainer demo|PLUGIN.so] [--trainer-arg TEXT]\n"
	  "                    [--eval-cohort NAME] [--work DIR] [--poll-ms N] [--out FILE]\n\n"
	  "Waits for each round's global model, evaluates and trains it on the cohort\n"
	  "NAME of the registry DIR and sends the sealed update to the coordinator;\n"
	  "every round is recorded in the registry's audit log.  The federation must\n"
	  "have been approved (fednode federation approve).  --trainer demo (the\n"
	  "default) is the demo's softmax regression; a PLUGIN.so exports\n"
	  "fednode_trainer_init() (doc/federated.md).  A node restarted after a crash\n"
	  "resumes.  --out writes the final model.\n",
	  cmd_node },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static int verbosity = FDN_LOG_WARN;

static void print_usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: fednode [--verbose|-v]... COMMAND [ARGS...]\n"
		"       fednode COMMAND --help\n\n"
		"The local node of a federated-learning network for medical imaging.\n\n"
		"Commands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nLibrary messages go to stderr; -v shows information, -vv debugging.\n");
}

static void log_to_stderr(fdn_log_level level, const char *module,
	const char *message, void *payload)
{
	static const char *names[] = { "", "error", "warning", "info", "debug" };

	(void)payload;
	fprintf(stderr, "fednode: %s: [%s] %s\n",
		level <= FDN_LOG_DEBUG ? names[level] : "?", module, message);
}

int cli_fail(const char *what, int rc)
{
	const fdn_error *e = fdn_error_last();

	fprintf(stderr, "fednode: %s: %s (%s)\n", what,
		e->code == rc ? e->message : fdn_strerror((fdn_error_code)rc),
		fdn_strerror((fdn_error_code)rc));
	return CLI_FAILED;
}

static int wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	fdn_init_options opts = FDN_INIT_OPTIONS_INIT;
	const struct cli_command *cmd = NULL;
	size_t i;
	int argi = 1, rc, help, major, minor;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (!strcmp(argv[argi], "--help") || !strcmp(argv[argi], "-h")) {
			print_usage(stdout);
			return CLI_OK;
		} else if (!strcmp(argv[argi], "--verbose") || !strcmp(argv[argi], "-v")) {
			verbosity = verbosity < FDN_LOG_DEBUG ? verbosity + 1 : verbosity;
		} else if (!strcmp(argv[argi], "-vv")) {
			verbosity = FDN_LOG_DEBUG;
		} else {
			fprintf(stderr, "fednode: unknown option '%s'\n\n", argv[argi]);
			print_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (argi >= argc) {
		print_usage(stderr);
		return CLI_USAGE;
	}
	/* "fednode help COMMAND" is "fednode COMMAND --help". */
	help = !strcmp(argv[argi], "help");
	if (help && ++argi >= argc) {
		print_usage(stdout);
		return CLI_OK;
	}
	for (i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[argi], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "fednode: unknown command '%s'\n\n", argv[argi]);
		print_usage(stderr);
		return CLI_USAGE;
	}
	if (help || wants_help(argc - argi, argv + argi)) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}

	fdn_version(&major, &minor, NULL);
	if (major != FDN_VERSION_MAJOR || minor < FDN_VERSION_MINOR) {
		fprintf(stderr, "fednode: built for libfednode %s but runs on %s\n",
			FDN_VERSION_STRING, fdn_version_string());
		return CLI_FAILED;
	}
	opts.log_cb = log_to_stderr;
	opts.log_level = verbosity;
	if ((rc = fdn_init_opts(&opts)) != 0)
		return cli_fail("cannot initialise libfednode", rc);
	rc = cmd->run(argc - argi, argv + argi);
	fdn_shutdown();
	return rc;
}
