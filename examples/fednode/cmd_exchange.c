/*
 * fednode keygen | trust | seal | open | inspect: node identities, the
 * trust store and envelopes.
 *
 * Passphrases never come from the command line (it is visible to every
 * user through ps): --passphrase-file or the FEDNODE_PASSPHRASE variable.
 *
 * Written as an example host program: CC0 (see examples/COPYING).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fednode/fednode.h>

#include "cli.h"

#define MAX_ARGS 4
/* fednode inspect reads at most this much (a header is <= 128 KiB). */
#define INSPECT_MAX (64u * 1024 * 1024)

static int write_new_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	size_t len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "fednode keygen: cannot write '%s': %s\n", path,
			errno == EEXIST ? "it exists already" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return CLI_FAILED;
	}
	close(fd);
	return CLI_OK;
}

/* --- keygen ------------------------------------------------------------------------ */

int cmd_keygen(int argc, char **argv)
{
	const char *id = NULL, *out = NULL, *pw_file = NULL, *pub_out = NULL, *until = NULL;
	struct cli_opt opts[] = { { "--id", &id }, { "--out", &out },
		{ "--passphrase-file", &pw_file }, { "--public-out", &pub_out },
		{ "--valid-until", &until }, { NULL, NULL } };
	char key_path[4096], pub_path[4096 + 8], *pw;
	fdn_buf text = FDN_BUF_INIT, fp = FDN_BUF_INIT;
	fdn_identity *ident = NULL;
	const char *pos[1];
	int npos, rc;

	if ((rc = cli_parse_options("keygen", argc, argv, 1, opts, pos, 0, &npos)) != CLI_OK)
		return rc;
	if (!id)
		return cli_usage_error("keygen", "--id NODE is required", NULL);
	if (out)
		snprintf(key_path, sizeof(key_path), "%s", out);
	else
		snprintf(key_path, sizeof(key_path), "%s.key", id);
	if (pub_out)
		snprintf(pub_path, sizeof(pub_path), "%s", pub_out);
	else
		snprintf(pub_path, sizeof(pub_path), "%s.pub", key_path);
	if ((rc = fdn_identity_generate(&ident, id)) != 0)
		return cli_fail("keygen", rc);
	if ((rc = cli_passphrase_get(&pw, "keygen", pw_file)) != CLI_OK) {
		fdn_identity_free(ident);
		return rc;
	}
	rc = fdn_identity_save(ident, key_path, pw);
	if (rc == 0)
		rc = fdn_identity_public(&text, ident, until);
	if (rc == 0)
		rc = fdn_identity_fingerprint(&fp, ident);
	if (rc != 0) {
		rc = cli_fail("keygen", rc);
	} else if ((rc = write_new_file(pub_path, text.ptr)) == CLI_OK) {
		printf("identity:    %s\n", id);
		printf("key file:    %s (%s, mode 0600)\n", key_path,
			pw ? "passphrase-protected" : "NOT passphrase-protected");
		printf("public text: %s\n", pub_path);
		printf("fingerprint: %s\n", fp.ptr);
		printf("\nHand the public text to your peers; compare the fingerprint with them\n"
			"out of band (phone, letter) before they trust it.\n");
	}
	cli_passphrase_free(pw);
	fdn_buf_dispose(&text);
	fdn_buf_dispose(&fp);
	fdn_identity_free(ident);
	return rc;
}

/* --- trust ----------------------------------------------------------------------- */

static char *read_text(const char *command, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = malloc(65536 + 1);
	size_t n = 0;

	if (!f || !text) {
		fprintf(stderr, "fednode %s: cannot read '%s': %s\n", command, path, strerror(errno));
		if (f)
			fclose(f);
		free(text);
		return NULL;
	}
	n = fread(text, 1, 65536, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

static int trust_list(fdn_trust *t)
{
	size_t n = fdn_trust_count(t);

	printf("%-24s %-12s %-40s %s\n", "NODE", "ROLE", "FINGERPRINT", "VALID UNTIL");
	for (size_t i = 0; i < n; i++) {
		fdn_trust_peer_info p = FDN_TRUST_PEER_INFO_INIT;
		if (fdn_trust_peer(&p, t, i) != 0)
			continue;
		printf("%-24s %-12s %-40s %s\n", p.node_id,
			p.role == FDN_TRUST_ROLE_COORDINATOR ? "coordinator" : "site", p.fingerprint,
			*p.valid_until ? p.valid_until : "-");
	}
	return CLI_OK;
}

int cmd_trust(int argc, char **argv)
{
	const char *path = NULL, *role_s = NULL, *until = NULL, *pos[1];
	struct cli_opt opts[] = { { "--trust", &path }, { "--role", &role_s },
		{ "--valid-until", &until }, { NULL, NULL } };
	fdn_buf fp = FDN_BUF_INIT;
	fdn_trust *t = NULL;
	char *text;
	int npos, rc, role = 0;
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub || (strcmp(sub, "add") && strcmp(sub, "list") && strcmp(sub, "remove")))
		return cli_usage_error("trust", "expected a subcommand: add, list or remove", sub);
	if ((rc = cli_parse_options("trust", argc, argv, 2, opts, pos, 1, &npos)) != CLI_OK)
		return rc;
	if (!path)
		return cli_usage_error("trust", "--trust FILE is required", NULL);
	if (!strcmp(sub, "list")) {
		if (npos)
			return cli_usage_error("trust", "unexpected argument", pos[0]);
		if ((rc = cli_trust_open(&t, path)) == CLI_OK)
			rc = trust_list(t);
		fdn_trust_free(t);
		return rc;
	}
	if (npos != 1)
		return cli_usage_error("trust", !strcmp(sub, "add") ? "add needs the PUBLIC file"
			: "remove needs the NODE id", NULL);
	if (!strcmp(sub, "add")) {
		if (!role_s || (strcmp(role_s, "site") && strcmp(role_s, "coordinator")))
			return cli_usage_error("trust", "add needs --role site|coordinator", role_s);
		role = !strcmp(role_s, "site") ? FDN_TRUST_ROLE_SITE : FDN_TRUST_ROLE_COORDINATOR;
		if (!(text = read_text("trust", pos[0])))
			return CLI_FAILED;
		if ((rc = cli_trust_open(&t, path)) == CLI_OK) {
			size_t n = fdn_trust_count(t);
			fdn_trust_peer_info p = FDN_TRUST_PEER_INFO_INIT;
			if ((rc = fdn_trust_add(t, text, role, until)) != 0 ||
			    (rc = fdn_trust_save(t)) != 0) {
				rc = cli_fail("trust add", rc);
			} else if (fdn_trust_peer(&p, t, n) == 0) {
				printf("trusted %s as a %s, fingerprint %s%s%s\n", p.node_id, role_s,
					p.fingerprint, *p.valid_until ? ", valid until " : "",
					p.valid_until);
				rc = CLI_OK;
			}
		}
		free(text);
	} else {
		if ((rc = cli_trust_open(&t, path)) == CLI_OK) {
			if ((rc = fdn_trust_remove(t, pos[0])) != 0 || (rc = fdn_trust_save(t)) != 0)
				rc = cli_fail("trust remove", rc);
			else
				printf("removed every key of %s\n", pos[0]);
		}
	}
	fdn_buf_dispose(&fp);
	fdn_trust_free(t);
	return rc;
}

/* --- seal and open --------------------------------------------------------------- */

struct envelope_args {
	const char *identity, *trust, *kind, *federation, *round, *pw_file;
	int kind_value;
	uint64_t round_value;
};

static int check_envelope_args(const char *command, struct envelope_args *a)
{
	char *end;

	if (!a->identity || !a->kind || !a->federation || !a->round)
		return cli_usage_error(command, "--identity, --kind, --federation and --round are required",
			NULL);
	if (fdn_envelope_kind_from_name(&a->kind_value, a->kind) != 0)
		return cli_usage_error(command, "unknown --kind (data, manifest, global, update, "
			"result, latest)", a->kind);
	errno = 0;
	a->round_value = strtoull(a->round, &end, 10);
	if (*a->round < '0' || *a->round > '9' || *end || errno)
		return cli_usage_error(command, "--round must be a number", a->round);
	return CLI_OK;
}

/* Splits "a,b,c" in place into @p names; returns the count or -1. */
static int split_names(char *list, const char **names, int max)
{
	int n = 0;

	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		if (n == max)
			return -1;
		names[n++] = tok;
	}
	return n;
}

int cmd_seal(int argc, char **argv)
{
	struct envelope_args a = { 0 };
	const char *to = NULL, *level_s = NULL, *pos[2], *names[64];
	struct cli_opt opts[] = { { "--identity", &a.identity }, { "--trust", &a.trust },
		{ "--kind", &a.kind }, { "--federation", &a.federation }, { "--round", &a.round },
		{ "--passphrase-file", &a.pw_file }, { "--to", &to }, { "--compress", &level_s },
		{ NULL, NULL } };
	fdn_seal_options so = FDN_SEAL_OPTIONS_INIT;
	fdn_identity *me = NULL;
	fdn_trust *t = NULL;
	char tmp[4200], *list = NULL;
	int npos, n, rc, in = -1, out = -1;
	struct stat st;

	if ((rc = cli_parse_options("seal", argc, argv, 1, opts, pos, 2, &npos)) != CLI_OK)
		return rc;
	if ((rc = check_envelope_args("seal", &a)) != CLI_OK)
		return rc;
	if (!to || npos != 2)
		return cli_usage_error("seal", "--to NODE[,NODE...], IN and OUT are required", NULL);
	so.kind = a.kind_value;
	so.federation = a.federation;
	so.round = a.round_value;
	if (level_s) {
		if (strlen(level_s) != 1 || *level_s < '1' || *level_s > '9')
			return cli_usage_error("seal", "--compress takes a zlib level 1..9", level_s);
		so.compression_level = *level_s - '0';
	}
	if (!(list = strdup(to)) || (n = split_names(list, names, 64)) <= 0) {
		free(list);
		return cli_usage_error("seal", "--to takes 1 to 64 node ids separated by commas", to);
	}
	if ((rc = cli_identity_load(&me, "seal", a.identity, a.pw_file)) != CLI_OK ||
	    (a.trust && (rc = cli_trust_open(&t, a.trust)) != CLI_OK))
		goto done;
	if ((in = open(pos[0], O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "fednode seal: cannot open '%s': %s\n", pos[0], strerror(errno));
		rc = CLI_FAILED;
		goto done;
	}
	/* Written under a temporary name, renamed when complete. */
	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", pos[1], (long)getpid());
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "fednode seal: cannot create '%s': %s\n", tmp, strerror(errno));
		rc = CLI_FAILED;
		goto done;
	}
	rc = fdn_envelope_seal_fd(in, out, me, t, names, (size_t)n, &so);
	if (rc == 0 && (fsync(out) != 0 || rename(tmp, pos[1]) != 0)) {
		fprintf(stderr, "fednode seal: cannot write '%s': %s\n", pos[1], strerror(errno));
		rc = CLI_FAILED;
	} else if (rc != 0) {
		rc = cli_fail("seal", rc);
	} else {
		fstat(out, &st);
		printf("sealed '%s' into '%s': %lld bytes, %s round %llu of %s, for %s\n",
			pos[0], pos[1], (long long)st.st_size, a.kind,
			(unsigned long long)a.round_value, a.federation, to);
	}
	if (rc != CLI_OK)
		unlink(tmp);
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(list);
	fdn_trust_free(t);
	fdn_identity_free(me);
	return rc;
}

int cmd_open(int argc, char **argv)
{
	struct envelope_args a = { 0 };
	const char *from = NULL, *pos[2];
	struct cli_opt opts[] = { { "--identity", &a.identity }, { "--trust", &a.trust },
		{ "--kind", &a.kind }, { "--federation", &a.federation }, { "--round", &a.round },
		{ "--passphrase-file", &a.pw_file }, { "--from", &from }, { NULL, NULL } };
	fdn_open_options oo = FDN_OPEN_OPTIONS_INIT;
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	fdn_identity *me = NULL;
	fdn_trust *t = NULL;
	int npos, rc;

	if ((rc = cli_parse_options("open", argc, argv, 1, opts, pos, 2, &npos)) != CLI_OK)
		return rc;
	if ((rc = check_envelope_args("open", &a)) != CLI_OK)
		return rc;
	if (!a.trust || npos != 2)
		return cli_usage_error("open", "--trust FILE, IN and OUT are required", NULL);
	oo.kind = a.kind_value;
	oo.federation = a.federation;
	oo.round = a.round_value;
	oo.sender = from;
	if ((rc = cli_identity_load(&me, "open", a.identity, a.pw_file)) == CLI_OK &&
	    (rc = cli_trust_open(&t, a.trust)) == CLI_OK) {
		rc = fdn_envelope_open_file(&info, pos[0], pos[1], me, t, &oo);
		if (rc != 0) {
			rc = cli_fail("open: envelope rejected, nothing written", rc);
		} else {
			printf("verified %s envelope from %s (round %llu of %s)\n",
				fdn_envelope_kind_name(info.kind), info.sender,
				(unsigned long long)info.round, info.federation);
			printf("payload: %llu bytes written to '%s'%s\n",
				(unsigned long long)info.payload_bytes, pos[1],
				info.compressed ? " (was compressed)" : "");
			printf("envelope: %llu bytes, %u recipient key%s\n",
				(unsigned long long)info.stored_bytes, info.recipients,
				info.recipients == 1 ? "" : "s");
		}
	}
	fdn_trust_free(t);
	fdn_identity_free(me);
	return rc;
}

int cmd_inspect(int argc, char **argv)
{
	const char *pos[1];
	struct cli_opt opts[] = { { NULL, NULL } };
	fdn_envelope_info info = FDN_ENVELOPE_INFO_INIT;
	char fp[3 * FDN_PUBLIC_KEY_BYTES];
	unsigned char *data;
	size_t n;
	FILE *f;
	int npos, rc;

	if ((rc = cli_parse_options("inspect", argc, argv, 1, opts, pos, 1, &npos)) != CLI_OK)
		return rc;
	if (npos != 1)
		return cli_usage_error("inspect", "no FILE given", NULL);
	if (!(f = fopen(pos[0], "rb"))) {
		fprintf(stderr, "fednode inspect: cannot open '%s': %s\n", pos[0], strerror(errno));
		return CLI_FAILED;
	}
	data = malloc(INSPECT_MAX);
	n = data ? fread(data, 1, INSPECT_MAX, f) : 0;
	fclose(f);
	if (!data)
		return CLI_FAILED;
	rc = fdn_envelope_inspect(&info, data, n);
	free(data);
	if (rc != 0)
		return cli_fail("inspect", rc);
	for (int i = 0; i < 8; i++)
		snprintf(fp + 2 * i, sizeof(fp) - 2 * (size_t)i, "%02x", info.sender_ed25519[i]);
	printf("UNVERIFIED: anyone can write any header; only 'fednode open' checks it.\n");
	printf("kind:        %s\n", fdn_envelope_kind_name(info.kind));
	printf("federation:  %s\n", info.federation);
	printf("round:       %llu\n", (unsigned long long)info.round);
	printf("sender:      %s (signing key %s...)\n", info.sender, fp);
	printf("recipients:  %u key%s\n", info.recipients, info.recipients == 1 ? "" : "s");
	if (info.stored_bytes)
		printf("size:        %llu bytes%s\n", (unsigned long long)info.stored_bytes,
			info.compressed ? ", some chunks compressed" : "");
	return CLI_OK;
}
