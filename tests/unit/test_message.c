/* test_message.c - unit tests for message.c: CRLF normalising, dot-stuffing, limits, header check. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounds.h"
#include "message.h"

#define ERRLEN 512

/* prep - message_prepare a NUL-terminated source; returns its result code. */
static int prep(struct message *m, const char *src, char *err)
{
	err[0] = '\0';
	return message_prepare(m, src, strlen(src), "msg.eml", err, ERRLEN);
}

/* expect_wire - prepare src and check the wire is exactly want. */
static void expect_wire(const char *src, const char *want)
{
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, src, err), 0, "prepare failed: %s", err);
	cr_assert_eq(m.wire_len, strlen(want), "wire_len %zu, want %zu: [%.*s]",
	             m.wire_len, strlen(want), (int)m.wire_len, m.wire);
	cr_assert_eq(memcmp(m.wire, want, m.wire_len), 0, "wire [%.*s], want [%s]",
	             (int)m.wire_len, m.wire, want);
	message_free(&m);
}

/* expect_error - prepare src (len octets) and check it fails with exactly want. */
static void expect_error(const char *src, size_t len, const char *want)
{
	struct message m;
	char err[ERRLEN] = "";
	cr_assert_eq(message_prepare(&m, src, len, "msg.eml", err, sizeof err), -1,
	             "prepare succeeded, want error %s", want);
	cr_assert_str_eq(err, want);
	cr_assert_null(m.wire);
}

Test(message, lf_crlf_and_mixed_give_the_same_wire)
{
	const char *want = "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n.\r\n";
	expect_wire("From: a@b\nSubject: hi\n\nbody\n", want);
	expect_wire("From: a@b\r\nSubject: hi\r\n\r\nbody\r\n", want);
	expect_wire("From: a@b\r\nSubject: hi\n\r\nbody\n", want);
}

Test(message, dot_alone_on_a_line_is_stuffed)
{
	expect_wire("A: b\n\nx\n.\ny\n", "A: b\r\n\r\nx\r\n..\r\ny\r\n.\r\n");
}

Test(message, dot_dot_x_gets_one_more_dot)
{
	expect_wire("A: b\n\n..x\n", "A: b\r\n\r\n...x\r\n.\r\n");
}

Test(message, dot_not_at_line_start_untouched)
{
	expect_wire("A: b\n\nx.y\n x.\na .\n", "A: b\r\n\r\nx.y\r\n x.\r\na .\r\n.\r\n");
}

Test(message, first_body_line_starting_with_dot)
{
	expect_wire("A: b\n\n.hidden\nrest\n", "A: b\r\n\r\n..hidden\r\nrest\r\n.\r\n");
}

Test(message, last_line_dot_without_newline)
{
	expect_wire("A: b\n\n.", "A: b\r\n\r\n..\r\n.\r\n");
}

Test(message, empty_body)
{
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, "Subject: x\n\n", err), 0, "%s", err);
	cr_assert_eq(m.wire_len, strlen("Subject: x\r\n\r\n.\r\n"));
	cr_assert_eq(memcmp(m.wire, "Subject: x\r\n\r\n.\r\n", m.wire_len), 0);
	cr_assert_eq(m.lines, 2);
	cr_assert_eq(m.size, 14);
	message_free(&m);
}

Test(message, headers_only_without_empty_line)
{
	expect_wire("Subject: x\nFrom: y\n", "Subject: x\r\nFrom: y\r\n.\r\n");
}

Test(message, no_final_newline_gets_crlf)
{
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, "A: b\n\nlast", err), 0, "%s", err);
	cr_assert_eq(m.wire_len, strlen("A: b\r\n\r\nlast\r\n.\r\n"));
	cr_assert_eq(memcmp(m.wire, "A: b\r\n\r\nlast\r\n.\r\n", m.wire_len), 0);
	cr_assert_eq(m.lines, 3);
	message_free(&m);
}

Test(message, eightbit_flag)
{
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, "A: b\n\nplain ascii\n", err), 0, "%s", err);
	cr_assert_not(m.eightbit);
	message_free(&m);
	cr_assert_eq(prep(&m, "A: b\n\ncaf\xc3\xa9\n", err), 0, "%s", err);
	cr_assert(m.eightbit);
	message_free(&m);
}

Test(message, eightbit_flag_far_into_a_long_message)
{
	/* Past the 64-octet blocks, in the tail, and in a block: each must be seen. */
	size_t offs[] = { 200, 1000 + 63, 1000 + 64 * 3 + 5 };
	for (size_t k = 0; k < 3; k++) {
		char src[2048];
		memcpy(src, "A: b\n\n", 6);
		memset(src + 6, 'x', sizeof src - 6);
		for (size_t i = 80; i < sizeof src; i += 81)
			src[i] = '\n';
		size_t len = 1000 + 64 * 4 + 7;
		src[offs[k]] = (char)0x80;
		struct message m;
		char err[ERRLEN] = "";
		cr_assert_eq(message_prepare(&m, src, len, "m", err, sizeof err), 0, "%s", err);
		cr_assert(m.eightbit, "octet 0x80 at %zu not seen", offs[k]);
		message_free(&m);
	}
}

/* line_of - a header line "X: " padded with 'a' to n octets, then LF. */
static char *line_of(char *p, size_t n)
{
	memcpy(p, "X: ", 3);
	memset(p + 3, 'a', n - 3);
	p[n] = '\n';
	return p + n + 1;
}

Test(message, line_of_998_octets_is_fine)
{
	char src[4096];
	char *p = src;
	memcpy(p, "A: b\n", 5);
	p = line_of(p + 5, 998);
	*p = '\0';
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, src, err), 0, "%s", err);
	cr_assert_eq(m.size, 6 + 1000);
	message_free(&m);
}

Test(message, line_of_998_octets_with_crlf_is_fine)
{
	char src[4096];
	char *p = src;
	memcpy(p, "A: b\n", 5);
	p = line_of(p + 5, 998);
	p[-1] = '\r';
	*p++ = '\n';
	*p = '\0';
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, src, err), 0, "%s", err);
	message_free(&m);
}

Test(message, line_of_999_octets_names_its_line)
{
	char src[4096];
	char *p = src;
	memcpy(p, "A: b\nC: d\n", 10);
	p = line_of(p + 10, 999);
	*p = '\0';
	expect_error(src, strlen(src), "msg.eml:3: line is 999 octets, longer than 998");
}

Test(message, long_line_in_body_without_final_newline)
{
	char src[4096];
	memcpy(src, "A: b\n\n", 6);
	memset(src + 6, 'z', 1500);
	expect_error(src, 6 + 1500, "msg.eml:3: line is 1500 octets, longer than 998");
}

Test(message, dot_stuffing_does_not_count_towards_998)
{
	char src[4096];
	memcpy(src, "A: b\n\n", 6);
	memset(src + 6, '.', 998);
	src[6 + 998] = '\n';
	struct message m;
	char err[ERRLEN] = "";
	cr_assert_eq(message_prepare(&m, src, 6 + 999, "m", err, sizeof err), 0, "%s", err);
	cr_assert_eq(m.wire_len, 6 + 2 + 999 + 2 + 3);
	cr_assert_eq(m.wire[8], '.');
	message_free(&m);
}

Test(message, bare_cr_is_an_error)
{
	expect_error("A: b\n\nx\ry\n", 10, "msg.eml:3: bare CR (a CR not followed by LF)");
	expect_error("A: b\n\nx\r\r\n", 10, "msg.eml:3: bare CR (a CR not followed by LF)");
	expect_error("A: b\n\nx\r", 8, "msg.eml:3: bare CR (a CR not followed by LF)");
	expect_error("A: b\r\r\n", 7, "msg.eml:1: bare CR (a CR not followed by LF)");
}

Test(message, nul_is_an_error)
{
	expect_error("A: b\nC: d\n\nx\0y\n", 15, "msg.eml:4: NUL octet");
	expect_error("A: b\0", 5, "msg.eml:1: NUL octet");
}

Test(message, first_line_not_a_header)
{
	expect_error("hello world\n\nbody\n", 18, "msg.eml:1: not a header field");
	expect_error("From sender Mon Jan 1\nA: b\n", 27, "msg.eml:1: not a header field");
	expect_error(": no name\n", 10, "msg.eml:1: not a header field");
	expect_error("\nbody\n", 6, "msg.eml:1: message starts with an empty line, not a header field");
	expect_error(" folded\n", 8,
	             "msg.eml:1: message starts with a continuation line, not a header field");
}

Test(message, later_header_line_not_a_field)
{
	expect_error("A: b\nno colon here\n\nbody\n", 25, "msg.eml:2: not a header field");
	expect_error("A: b\nBad Name: x\n", 17, "msg.eml:2: not a header field");
}

Test(message, body_lines_are_not_header_checked)
{
	expect_wire("A: b\n\nno colon here\n\n  indented\n", "A: b\r\n\r\nno colon here\r\n\r\n  indented\r\n.\r\n");
}

Test(message, continuation_lines)
{
	expect_wire("Subject: one\n two\n\tthree\nX: y\n\nb\n",
	            "Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\nb\r\n.\r\n");
}

Test(message, empty_input_is_an_error)
{
	expect_error("", 0, "msg.eml: message is empty");
}

Test(message, size_and_lines)
{
	struct message m;
	char err[ERRLEN];
	/* "A: b" "" ".x" "y" -> 6 + 2 + 4 + 3 = 15 octets, 4 lines, one stuffed dot. */
	cr_assert_eq(prep(&m, "A: b\n\n.x\ny", err), 0, "%s", err);
	cr_assert_eq(m.size, 15);
	cr_assert_eq(m.lines, 4);
	cr_assert_eq(m.wire_len, 15 + 1 + 3);
	cr_assert_not(m.eightbit);
	message_free(&m);
}

Test(message, free_clears)
{
	struct message m;
	char err[ERRLEN];
	cr_assert_eq(prep(&m, "A: b\n", err), 0, "%s", err);
	message_free(&m);
	cr_assert_null(m.wire);
	cr_assert_eq(m.wire_len, 0);
}

Test(message, large_message_matches_a_simple_model)
{
	/* 4 MiB of mixed endings and dots, checked against a byte-at-a-time model. */
	size_t len = 4u << 20;
	char *src = malloc(len);
	cr_assert_not_null(src);
	unsigned seed = 12345;
	size_t i = 0;
	memcpy(src, "A: b\n\n", 6);
	for (i = 6; i < len; ) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 16) % 120;
		for (size_t k = 0; k < n && i < len; k++)
			src[i++] = (k == 0 && (seed & 1)) ? '.' : (char)('a' + (k % 26));
		if (i < len && (seed & 2) && i + 1 < len)
			src[i++] = '\r';
		if (i < len)
			src[i++] = '\n';
	}
	if (src[len - 1] == '\r')
		src[len - 1] = 'z';
	char *model = malloc(len * 2 + 8);
	cr_assert_not_null(model);
	size_t o = 0;
	bool bol = true;
	for (i = 0; i < len; i++) {
		if (bol && src[i] == '.')
			model[o++] = '.';
		bol = false;
		if (src[i] == '\r')
			continue;
		if (src[i] == '\n') {
			model[o++] = '\r';
			bol = true;
		}
		model[o++] = src[i];
	}
	if (!bol) {
		model[o++] = '\r';
		model[o++] = '\n';
	}
	memcpy(model + o, ".\r\n", 3);
	o += 3;
	struct message m;
	char err[ERRLEN] = "";
	cr_assert_eq(message_prepare(&m, src, len, "big", err, sizeof err), 0, "%s", err);
	cr_assert_eq(m.wire_len, o);
	cr_assert_eq(memcmp(m.wire, model, o), 0);
	message_free(&m);
	free(model);
	free(src);
}

/* write_temp - write data to a fresh temp file; returns its path in path. */
static void write_temp(char *path, size_t pathlen, const char *data, size_t len)
{
	snprintf(path, pathlen, "/tmp/volley_test_message_XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

Test(message, load_temp_file)
{
	char path[64];
	write_temp(path, sizeof path, "From: a@b\n\n.x\n", 14);
	struct message m;
	char err[ERRLEN] = "";
	int rc = message_load(&m, path, err, sizeof err);
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	const char *want = "From: a@b\r\n\r\n..x\r\n.\r\n";
	cr_assert_eq(m.wire_len, strlen(want));
	cr_assert_eq(memcmp(m.wire, want, m.wire_len), 0);
	cr_assert_eq(m.lines, 3);
	message_free(&m);
}

Test(message, load_error_names_the_file_and_line)
{
	char path[64];
	write_temp(path, sizeof path, "From: a@b\nnope\n", 15);
	struct message m;
	char err[ERRLEN] = "";
	int rc = message_load(&m, path, err, sizeof err);
	unlink(path);
	cr_assert_eq(rc, -1);
	char want[128];
	snprintf(want, sizeof want, "%s:2: not a header field", path);
	cr_assert_str_eq(err, want);
}

Test(message, load_empty_file)
{
	char path[64];
	write_temp(path, sizeof path, "", 0);
	struct message m;
	char err[ERRLEN] = "";
	int rc = message_load(&m, path, err, sizeof err);
	unlink(path);
	cr_assert_eq(rc, -1);
	char want[128];
	snprintf(want, sizeof want, "%s: message is empty", path);
	cr_assert_str_eq(err, want);
}

Test(message, load_missing_file_names_the_path)
{
	struct message m;
	char err[ERRLEN] = "";
	const char *path = "/nonexistent/volley/message.eml";
	cr_assert_eq(message_load(&m, path, err, sizeof err), -1);
	cr_assert_str_eq(err, "/nonexistent/volley/message.eml: cannot read: No such file or directory");
	cr_assert_null(m.wire);
}

Test(message, load_directory_is_an_error)
{
	struct message m;
	char err[ERRLEN] = "";
	cr_assert_eq(message_load(&m, "/tmp", err, sizeof err), -1);
	cr_assert_str_eq(err, "/tmp: cannot read: Is a directory");
}

Test(message, tiny_error_buffer_is_safe)
{
	struct message m;
	char err[8];
	memset(err, 'Q', sizeof err);
	cr_assert_eq(message_prepare(&m, "nope\n", 5, "a-long-message-name", err, sizeof err), -1);
	cr_assert_eq(err[sizeof err - 1], '\0');
	cr_assert_eq(message_prepare(&m, "nope\n", 5, "n", NULL, 0), -1);
}
