/* test_shaping.c - shaping rules (grammar, errors, built-ins, overrides, lookups), GCRA limiters, AIMD throttling. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shaping.h"

/* parse - parse text as "t.rules" over s. */
static int parse(struct shaping *s, const char *text, char *err)
{
	return shaping_parse(s, "t.rules", text, strlen(text), err, 512);
}

/* provider_of - the name of the provider of one host, "" if none. */
static const char *provider_of(const struct shaping *s, const char *host)
{
	const char *h[1] = {host};
	const struct shaping_rule *r = shaping_provider(s, h, 1);
	return r ? r->name : "";
}

/* write_tmp - a temporary file holding text; returns its path (static buffer). */
static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/volley-shaping-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(shaping, every_key_unit_comment_and_tab)
{
	struct shaping s = {0};
	char err[512] = "";
	const char *text =
		"# a comment line\n"
		"\n"
		"   \t  \n"
		"default connections=20 messages-per-connection=1000   # trailing comment\n"
		"domain:Example.COM\tconnections=2\trate=10/m\n"
		"mx:.google.com name=google connections=40 rate=50/s connect-rate=10/s messages-per-connection=100\n"
		"  mx:MX.Example.net   rate=2.5/h connect-rate=0.5/m\r\n"
		"domain:bare.example";
	cr_assert_eq(parse(&s, text, err), 0, "%s", err);
	cr_assert_eq(s.n, 5);
	const struct shaping_rule *d = shaping_default(&s);
	cr_assert_not_null(d);
	cr_assert_eq(d->kind, SHAPING_DEFAULT);
	cr_assert_str_eq(d->name, "default");
	cr_assert_eq(d->lim.connections, 20);
	cr_assert_eq(d->lim.msgs_per_conn, 1000);
	cr_assert_eq(d->lim.rate, 0);
	cr_assert_eq(d->line, 4);
	cr_assert_str_eq(d->file, "t.rules");
	const struct shaping_rule *e = shaping_domain(&s, "example.com");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->match, "example.com");
	cr_assert_str_eq(e->name, "example.com");
	cr_assert_eq(e->lim.connections, 2);
	cr_assert_eq(e->lim.rate, 10.0 / 60);
	cr_assert_eq(e->provider, SHAPING_NO_PROVIDER);
	cr_assert_eq(e->line, 5);
	const struct shaping_rule *g = &s.rule[2];
	cr_assert_eq(g->kind, SHAPING_MX);
	cr_assert_str_eq(g->match, ".google.com");
	cr_assert_str_eq(g->name, "google");
	cr_assert_eq(g->lim.connections, 40);
	cr_assert_eq(g->lim.msgs_per_conn, 100);
	cr_assert_eq(g->lim.rate, 50);
	cr_assert_eq(g->lim.connect_rate, 10);
	const struct shaping_rule *x = &s.rule[3];
	cr_assert_str_eq(x->match, "mx.example.net");
	cr_assert_str_eq(x->name, "mx.example.net", "default name: the selector's value");
	cr_assert_eq(x->lim.rate, 2.5 / 3600);
	cr_assert_eq(x->lim.connect_rate, 0.5 / 60);
	cr_assert_eq(x->lim.connections, 0, "unset: no limit");
	cr_assert_eq(x->line, 7);
	cr_assert_eq(g->provider, 0);
	cr_assert_eq(x->provider, 1);
	cr_assert_eq(s.nprovider, 2);
	const struct shaping_rule *b = shaping_domain(&s, "bare.example");
	cr_assert_not_null(b, "last line without a newline");
	cr_assert_eq(b->line, 8);
	shaping_free(&s);
	cr_assert_eq(s.n, 0);
	cr_assert_null(s.rule);
}

Test(shaping, number_and_rate_values)
{
	struct shaping s = {0};
	char err[512];
	cr_assert_eq(parse(&s, "default connections=007 messages-per-connection=1000000000 "
	                      "rate=1.11111111111111111111111111111111111111/s connect-rate=1000000/s\n",
	                   err), 0, "%s", err);
	const struct shaping_rule *d = shaping_default(&s);
	cr_assert_eq(d->lim.connections, 7);
	cr_assert_eq(d->lim.msgs_per_conn, 1000000000);
	cr_assert_float_eq(d->lim.rate, 1.0 + 1.0 / 9, 1e-12);
	cr_assert_eq(d->lim.connect_rate, 1000000);
	shaping_free(&s);
	cr_assert_eq(parse(&s, "default connections=65536 rate=3600/h connect-rate=0.0417/h\n", err), 0,
	             "%s", err);
	cr_assert_eq(shaping_default(&s)->lim.connections, 65536);
	cr_assert_eq(shaping_default(&s)->lim.rate, 1);
	cr_assert_float_eq(shaping_default(&s)->lim.connect_rate, 0.0417 / 3600, 1e-15);
	shaping_free(&s);
}

Test(shaping, empty_and_comment_only_files)
{
	struct shaping s = {0};
	char err[512];
	cr_assert_eq(parse(&s, "", err), 0);
	cr_assert_eq(parse(&s, "# nothing\n\n#default connections=x\n", err), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_null(shaping_default(&s));
	cr_assert_null(shaping_domain(&s, "example.com"));
	shaping_free(&s);
}

/* One bad file and the exact error it gives. */
struct bad { const char *text; const char *err; };

Test(shaping, every_error_with_file_and_line)
{
	static const struct bad bad[] = {
		{"speed connections=1\n", "t.rules:1: unknown selector 'speed'"},
		{"host:x.com\n", "t.rules:1: unknown selector 'host:x.com'"},
		{"Default\n", "t.rules:1: unknown selector 'Default'"},
		{"\n# c\ndefault conns=1\n", "t.rules:3: unknown key 'conns'"},
		{"default Rate=1/s\n", "t.rules:1: unknown key 'Rate'"},
		{"default connections\n", "t.rules:1: missing '=' in 'connections'"},
		{"default connections=1 connections=2\n", "t.rules:1: duplicate key 'connections'"},
		{"default name=a name=a\n", "t.rules:1: duplicate key 'name'"},
		{"default connections=abc\n", "t.rules:1: bad number 'abc' for connections"},
		{"default connections=\n", "t.rules:1: bad number '' for connections"},
		{"default connections=-1\n", "t.rules:1: bad number '-1' for connections"},
		{"default connections=1.5\n", "t.rules:1: bad number '1.5' for connections"},
		{"default connections=0\n", "t.rules:1: connections=0 out of range (1..65536)"},
		{"default connections=65537\n", "t.rules:1: connections=65537 out of range (1..65536)"},
		{"default connections=99999999999999999999999\n",
		 "t.rules:1: connections=99999999999999999999999 out of range (1..65536)"},
		{"default messages-per-connection=x\n",
		 "t.rules:1: bad number 'x' for messages-per-connection"},
		{"default messages-per-connection=1000000001\n",
		 "t.rules:1: messages-per-connection=1000000001 out of range (1..1000000000)"},
		{"default rate=10\n", "t.rules:1: bad rate '10' for rate (want N/s, N/m or N/h)"},
		{"default rate=10/d\n", "t.rules:1: bad rate '10/d' for rate (want N/s, N/m or N/h)"},
		{"default rate=10/\n", "t.rules:1: bad rate '10/' for rate (want N/s, N/m or N/h)"},
		{"default rate=10/ss\n", "t.rules:1: bad rate '10/ss' for rate (want N/s, N/m or N/h)"},
		{"default rate=/s\n", "t.rules:1: bad rate '/s' for rate (want N/s, N/m or N/h)"},
		{"default rate=1./s\n", "t.rules:1: bad rate '1./s' for rate (want N/s, N/m or N/h)"},
		{"default rate=.5/s\n", "t.rules:1: bad rate '.5/s' for rate (want N/s, N/m or N/h)"},
		{"default rate=1e3/s\n", "t.rules:1: bad rate '1e3/s' for rate (want N/s, N/m or N/h)"},
		{"default rate=+1/s\n", "t.rules:1: bad rate '+1/s' for rate (want N/s, N/m or N/h)"},
		{"default rate=inf/s\n", "t.rules:1: bad rate 'inf/s' for rate (want N/s, N/m or N/h)"},
		{"default connect-rate=1/S\n",
		 "t.rules:1: bad rate '1/S' for connect-rate (want N/s, N/m or N/h)"},
		{"default rate=0/s\n", "t.rules:1: rate=0/s out of range (one a day to 1000000/s)"},
		{"default rate=0.01/h\n", "t.rules:1: rate=0.01/h out of range (one a day to 1000000/s)"},
		{"default connect-rate=1000001/s\n",
		 "t.rules:1: connect-rate=1000001/s out of range (one a day to 1000000/s)"},
		{"mx:.google.com name=Google\n",
		 "t.rules:1: bad name 'Google' (want a-z, 0-9, '.', '_', '-')"},
		{"mx:.google.com name=\n", "t.rules:1: bad name '' (want a-z, 0-9, '.', '_', '-')"},
		{"mx:.google.com name=a:b\n", "t.rules:1: bad name 'a:b' (want a-z, 0-9, '.', '_', '-')"},
		{"domain:exa_mple.com\n", "t.rules:1: bad domain 'exa_mple.com'"},
		{"domain:\n", "t.rules:1: bad domain ''"},
		{"domain:example.com.\n", "t.rules:1: bad domain 'example.com.'"},
		{"domain:.example.com\n", "t.rules:1: bad domain '.example.com'"},
		{"domain:-a.com\n", "t.rules:1: bad domain '-a.com'"},
		{"mx:\n", "t.rules:1: bad MX suffix ''"},
		{"mx:.\n", "t.rules:1: bad MX suffix '.'"},
		{"mx:..google.com\n", "t.rules:1: bad MX suffix '..google.com'"},
		{"mx:a..b\n", "t.rules:1: bad MX suffix 'a..b'"},
		{"default connections=1\ndefault\n",
		 "t.rules:2: duplicate selector 'default' (first at line 1)"},
		{"domain:a.com\n\ndomain:A.COM rate=1/s\n",
		 "t.rules:3: duplicate selector 'domain:a.com' (first at line 1)"},
		{"mx:.x.com name=p connections=1\nmx:.y.com name=p connections=2\n",
		 "t.rules:2: provider 'p' has other limits at line 1"},
		{NULL, NULL},
	};
	for (int i = 0; bad[i].text; i++) {
		struct shaping s = {0};
		char err[512] = "";
		cr_assert_eq(parse(&s, bad[i].text, err), -1, "accepted: %s", bad[i].text);
		cr_assert_str_eq(err, bad[i].err, "for: %s", bad[i].text);
		cr_assert_eq(s.n, 0);
		shaping_free(&s);
	}
}

Test(shaping, long_lines_names_and_nul)
{
	struct shaping s = {0};
	char err[512], text[1200];
	/* exactly 512 octets (a comment pads it), then CRLF: accepted */
	memset(text, 0, sizeof text);
	strcpy(text, "default #");
	memset(text + 9, 'x', 512 - 9);
	strcpy(text + 512, "\r\n");
	cr_assert_eq(parse(&s, text, err), 0, "%s", err);
	strcpy(text + 512, "y\n");
	cr_assert_eq(parse(&s, text, err), -1);
	cr_assert_str_eq(err, "t.rules:1: line too long (over 512 octets)");
	/* a 253-octet domain is fine, 254 is not */
	char dom[300];
	memset(dom, 0, sizeof dom);
	for (int i = 0; i < 4; i++)
		memcpy(dom + i * 64, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 64);
	dom[253] = '\0';
	cr_assert_eq(strlen(dom), 253);
	snprintf(text, sizeof text, "domain:%s\n", dom);
	cr_assert_eq(parse(&s, text, err), 0, "%s", err);
	cr_assert_not_null(shaping_domain(&s, dom));
	snprintf(text, sizeof text, "domain:a%s\n", dom);
	cr_assert_eq(parse(&s, text, err), -1);
	cr_assert_str_eq(err, "t.rules:1: domain longer than 253 octets");
	snprintf(text, sizeof text, "mx:.%s\n", dom);
	cr_assert_eq(parse(&s, text, err), -1);
	cr_assert_str_eq(err, "t.rules:1: MX suffix longer than 253 octets");
	char name[300];
	memset(name, 'n', 254);
	name[254] = '\0';
	snprintf(text, sizeof text, "mx:.a.com name=%s\n", name);
	cr_assert_eq(parse(&s, text, err), -1);
	cr_assert_str_eq(err, "t.rules:1: name longer than 253 octets");
	cr_assert_eq(shaping_parse(&s, "n.rules", "\ndefault\0x\n", 11, err, sizeof err), -1);
	cr_assert_str_eq(err, "n.rules:2: NUL byte");
	shaping_free(&s);
}

Test(shaping, at_most_1024_rules_per_file)
{
	struct shaping s = {0};
	char err[512];
	size_t cap = 1025 * 32;
	char *text = malloc(cap), *p = text;
	for (int i = 1; i <= 1024; i++)
		p += sprintf(p, "domain:d%d.example\n", i);
	cr_assert_eq(shaping_parse(&s, "t.rules", text, (size_t)(p - text), err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.n, 1024);
	cr_assert_not_null(shaping_domain(&s, "d777.example"));
	shaping_free(&s);
	p += sprintf(p, "domain:d1025.example\n");
	cr_assert_eq(shaping_parse(&s, "t.rules", text, (size_t)(p - text), err, sizeof err), -1);
	cr_assert_str_eq(err, "t.rules:1025: too many rules (at most 1024)");
	free(text);
	shaping_free(&s);
}

Test(shaping, error_leaves_the_set_unchanged)
{
	struct shaping s = {0};
	char err[512];
	cr_assert_eq(parse(&s, "default connections=3\ndomain:a.com connections=1\n", err), 0);
	cr_assert_eq(parse(&s, "default connections=9\ndomain:b.com\nbogus\n", err), -1);
	cr_assert_str_eq(err, "t.rules:3: unknown selector 'bogus'");
	cr_assert_eq(s.n, 2);
	cr_assert_eq(shaping_default(&s)->lim.connections, 3);
	cr_assert_null(shaping_domain(&s, "b.com"));
	shaping_free(&s);
}

Test(shaping, builtins_parse_and_match)
{
	struct shaping s;
	char err[512] = "";
	cr_assert_eq(shaping_init(&s, NULL, err, sizeof err), 0, "%s", err);
	const struct shaping_rule *d = shaping_default(&s);
	cr_assert_not_null(d);
	cr_assert_eq(d->lim.connections, 20);
	cr_assert_eq(d->lim.msgs_per_conn, 1000);
	cr_assert_eq(d->lim.rate, 0);
	cr_assert_str_eq(d->file, "<built-in>");
	static const char *const want[][2] = {
		{"gmail-smtp-in.l.google.com", "google"},
		{"ALT1.ASPMX.L.GOOGLE.COM.", "google"},
		{"mx.googlemail.com", "google"},
		{"mta5.am0.yahoodns.net", "yahoo"},
		{"mx-aol.mail.gm0.yahoodns.net", "yahoo"},
		{"example-com.mail.protection.outlook.com", "microsoft"},
		{"outlook-com.olc.protection.outlook.com", "microsoft"},
		{"example-com.r-v1.mx.microsoft", "microsoft"},
		{"mx01.mail.icloud.com", "apple"},
		{"mx00.emig.gmx.net", "gmx-webde"},
		{"mx-ha03.web.de", "gmx-webde"},
		{"mx1a1.comcast.net", "comcast"},
		{"smtp-in.orange.fr", "orange"},
		{"mxs.mail.ru", "mail-ru"},
		{"mx.yandex.net", "yandex"},
		{"mx.yandex.ru", "yandex"},
		{"mx.zoho.com", "zoho"},
		{"mx.zoho.eu", "zoho"},
		{"mail.protonmail.ch", "proton"},
		{"notgoogle.com", ""},
		{"google.com", ""},
		{"aspmx.l.google.com.evil.example", ""},
		{"mx.example.org", ""},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		cr_assert_str_eq(provider_of(&s, want[i][0]), want[i][1], "host %s", want[i][0]);
	const char *g1[] = {"gmail-smtp-in.l.google.com"}, *g2[] = {"mx.googlemail.com"};
	const struct shaping_rule *a = shaping_provider(&s, g1, 1), *b = shaping_provider(&s, g2, 1);
	cr_assert_neq(a, b);
	cr_assert_eq(a->provider, b->provider, "one Google budget for both suffixes");
	cr_assert_eq(a->lim.connections, 5);
	cr_assert_eq(a->lim.msgs_per_conn, 50);
	cr_assert_eq(s.nprovider, 11);
	for (unsigned i = 0; i < s.n; i++)
		cr_assert_str_eq(s.rule[i].file, "<built-in>");
	shaping_free(&s);
}

Test(shaping, longest_suffix_over_all_hosts)
{
	struct shaping s = {0};
	char err[512];
	cr_assert_eq(parse(&s, "mx:.com name=dotcom\nmx:.example.com name=ex\n"
	                      "mx:mx1.example.com name=exact\nmx:.aa.net name=first\n"
	                      "mx:.bb.net name=second\n", err), 0, "%s", err);
	cr_assert_str_eq(provider_of(&s, "mx1.example.com"), "exact");
	cr_assert_str_eq(provider_of(&s, "mx2.example.com"), "ex");
	cr_assert_str_eq(provider_of(&s, "a.mx1.example.com"), "ex", "an exact host is not a suffix");
	cr_assert_str_eq(provider_of(&s, "example.com"), "dotcom", ".example.com needs a label below");
	cr_assert_str_eq(provider_of(&s, "a.b.com"), "dotcom");
	cr_assert_str_eq(provider_of(&s, "a.org"), "");
	const char *two[] = {"a.b.com", "mx2.example.com"};
	cr_assert_str_eq(shaping_provider(&s, two, 2)->name, "ex", "longest over all hosts");
	const char *tie[] = {"x.bb.net", NULL, "x.aa.net"};
	cr_assert_str_eq(shaping_provider(&s, tie, 3)->name, "first", "a tie goes to the first rule");
	cr_assert_null(shaping_provider(&s, tie, 0));
	shaping_free(&s);
}

Test(shaping, domain_lookup_ignores_case_and_one_trailing_dot)
{
	struct shaping s = {0};
	char err[512];
	cr_assert_eq(parse(&s, "domain:Example.ORG connections=1\ndomain:b.example\n", err), 0);
	cr_assert_not_null(shaping_domain(&s, "example.org"));
	cr_assert_not_null(shaping_domain(&s, "EXAMPLE.org"));
	cr_assert_not_null(shaping_domain(&s, "example.org."));
	cr_assert_null(shaping_domain(&s, "example.org.."));
	cr_assert_null(shaping_domain(&s, "sub.example.org"), "exact, not a suffix");
	cr_assert_null(shaping_domain(&s, "xample.org"));
	cr_assert_null(shaping_domain(&s, ""));
	cr_assert_null(shaping_domain(&s, NULL));
	cr_assert_str_eq(shaping_domain(&s, "B.Example")->name, "b.example");
	shaping_free(&s);
}

Test(shaping, user_file_replaces_builtins)
{
	struct shaping s;
	char err[512] = "";
	const char *path = write_tmp("# mine\n"
	                             "default connections=5\n"
	                             "mx:.google.com name=google connections=2 messages-per-connection=10\n"
	                             "domain:Example.org connections=1 rate=1/s\n");
	cr_assert_eq(shaping_init(&s, path, err, sizeof err), 0, "%s", err);
	struct shaping builtin;
	cr_assert_eq(shaping_init(&builtin, NULL, err, sizeof err), 0);
	cr_assert_eq(s.n, builtin.n + 1, "two replaced, one added");
	const struct shaping_rule *d = shaping_default(&s);
	cr_assert_eq(d->lim.connections, 5);
	cr_assert_eq(d->lim.msgs_per_conn, 0, "the whole rule is replaced, not merged");
	cr_assert_str_eq(d->file, path);
	cr_assert_eq(d->line, 2);
	const char *g[] = {"gmail-smtp-in.l.google.com"}, *gm[] = {"mx.googlemail.com"};
	const struct shaping_rule *a = shaping_provider(&s, g, 1), *b = shaping_provider(&s, gm, 1);
	cr_assert_eq(a->lim.connections, 2);
	cr_assert_eq(a->line, 3);
	cr_assert_str_eq(b->file, "<built-in>", "the other Google suffix stays built in...");
	cr_assert_eq(b->lim.connections, 2, "...but takes the limits of provider 'google'");
	cr_assert_eq(b->lim.msgs_per_conn, 10);
	cr_assert_eq(b->lim.rate, 0);
	cr_assert_eq(a->provider, b->provider);
	cr_assert_eq(s.nprovider, builtin.nprovider);
	const struct shaping_rule *e = shaping_domain(&s, "EXAMPLE.ORG");
	cr_assert_eq(e->lim.rate, 1);
	cr_assert_eq(e->line, 4);
	unlink(path);
	shaping_free(&s);
	shaping_free(&builtin);
}

Test(shaping, renamed_override_is_a_new_provider)
{
	struct shaping s;
	char err[512];
	cr_assert_eq(shaping_init(&s, NULL, err, sizeof err), 0);
	unsigned n = s.n, np = s.nprovider;
	cr_assert_eq(parse(&s, "mx:.google.com connections=3\n", err), 0, "%s", err);
	cr_assert_eq(s.n, n);
	cr_assert_eq(s.nprovider, np + 1);
	cr_assert_str_eq(provider_of(&s, "aspmx.l.google.com"), "google.com");
	cr_assert_str_eq(provider_of(&s, "mx.googlemail.com"), "google");
	const char *gm[] = {"mx.googlemail.com"};
	cr_assert_eq(shaping_provider(&s, gm, 1)->lim.connections, 5, "untouched");
	shaping_free(&s);
}

Test(shaping, init_errors)
{
	struct shaping s;
	char err[512];
	cr_assert_eq(shaping_init(&s, "/nonexistent/x.rules", err, sizeof err), -1);
	cr_assert_str_eq(err, "/nonexistent/x.rules: cannot read: No such file or directory");
	cr_assert_eq(s.n, 0);
	cr_assert_null(s.rule);
	cr_assert_eq(shaping_init(&s, "/tmp", err, sizeof err), -1);
	cr_assert_str_eq(err, "/tmp: cannot read: Is a directory");
	const char *path = write_tmp("default connections=1\nmx:.a.com speed=1\n");
	cr_assert_eq(shaping_init(&s, path, err, sizeof err), -1);
	char want[600];
	snprintf(want, sizeof want, "%s:2: unknown key 'speed'", path);
	cr_assert_str_eq(err, want);
	cr_assert_eq(s.n, 0);
	unlink(path);
	path = write_tmp("default connections=1\ndefault connections=2\n");
	cr_assert_eq(shaping_init(&s, path, err, sizeof err), -1, "a duplicate in the user's file");
	snprintf(want, sizeof want, "%s:2: duplicate selector 'default' (first at line 1)", path);
	cr_assert_str_eq(err, want);
	unlink(path);
}

Test(shaping, tighter_limits)
{
	struct shaping_limits a = {.connections = 10, .msgs_per_conn = 0, .rate = 5, .connect_rate = 0};
	struct shaping_limits b = {.connections = 0, .msgs_per_conn = 50, .rate = 2, .connect_rate = 1};
	struct shaping_limits t = shaping_tighter(a, b);
	cr_assert_eq(t.connections, 10);
	cr_assert_eq(t.msgs_per_conn, 50);
	cr_assert_eq(t.rate, 2);
	cr_assert_eq(t.connect_rate, 1);
	t = shaping_tighter((struct shaping_limits){0}, (struct shaping_limits){0});
	cr_assert_eq(t.connections + t.msgs_per_conn, 0);
	cr_assert_eq(t.rate + t.connect_rate, 0);
}

Test(rate, burst_then_spacing_with_exact_retry_times)
{
	struct rate_limiter r;
	int64_t at = -1;
	rate_init(&r);
	/* 10/s: one every 100000 us; burst 3 */
	for (int i = 0; i < 3; i++)
		cr_assert(rate_take(&r, 10, 3, 0, &at), "burst token %d", i);
	cr_assert_not(rate_take(&r, 10, 3, 0, &at));
	cr_assert_eq(at, 100000);
	cr_assert_not(rate_take(&r, 10, 3, 99999, &at));
	cr_assert_eq(at, 100000, "a refusal consumes nothing");
	cr_assert(rate_take(&r, 10, 3, 100000, &at));
	cr_assert_not(rate_take(&r, 10, 3, 100000, &at));
	cr_assert_eq(at, 200000);
	/* idle for long: the burst refills, never beyond 3 */
	for (int i = 0; i < 3; i++)
		cr_assert(rate_take(&r, 10, 3, 10000000, NULL));
	cr_assert_not(rate_take(&r, 10, 3, 10000000, &at));
	cr_assert_eq(at, 10100000);
}

Test(rate, burst_one_spacing)
{
	struct rate_limiter r = {0};
	int64_t at = -1;
	cr_assert(rate_take(&r, 10, 1, 1000000, &at));
	cr_assert_not(rate_take(&r, 10, 1, 1050000, &at));
	cr_assert_eq(at, 1100000);
	cr_assert(rate_take(&r, 10, 1, 1100000, &at));
	cr_assert(rate_take(&r, 10, 1, 1250000, &at), "late: no credit saved beyond the burst");
	cr_assert_not(rate_take(&r, 10, 1, 1300000, &at));
	cr_assert_eq(at, 1350000);
	cr_assert_not(rate_take(&r, 10, 0, 1300000, &at), "burst below 1 counts as 1");
	cr_assert_eq(at, 1350000);
}

Test(rate, decimal_rates_round_the_interval_up)
{
	struct rate_limiter r = {0};
	int64_t at = 0;
	cr_assert(rate_take(&r, 3, 1, 0, &at));
	cr_assert_not(rate_take(&r, 3, 1, 0, &at));
	cr_assert_eq(at, 333334, "1e6/3 rounded up: never faster than 3/s");
	struct rate_limiter m = {0};
	cr_assert(rate_take(&m, 1.0 / 60, 1, 5, &at));
	cr_assert_not(rate_take(&m, 1.0 / 60, 1, 6, &at));
	cr_assert_eq(at, 60000005);
}

Test(rate, unlimited_always_takes)
{
	struct rate_limiter r = {0};
	for (int i = 0; i < 1000; i++) {
		cr_assert(rate_take(&r, 0, 1, 0, NULL));
		cr_assert(rate_take(&r, -5, 1, 0, NULL));
	}
	cr_assert_eq(atomic_load(&r.tat_us), 0, "untouched");
}

/* Shared state of the threaded test: a simulated clock all threads advance. */
struct race {
	struct rate_limiter lim;
	double rate, burst;
	_Atomic int64_t clock_us;
	int64_t end_us;
	_Atomic long taken;
};

/* racer - take tokens at the simulated time, advancing it, until the end. */
static void *racer(void *arg)
{
	struct race *r = arg;
	long mine = 0;
	for (;;) {
		int64_t now = atomic_fetch_add(&r->clock_us, 3);
		if (now > r->end_us)
			break;
		mine += rate_take(&r->lim, r->rate, r->burst, now, NULL);
	}
	atomic_fetch_add(&r->taken, mine);
	return NULL;
}

/* race_run - n threads over a simulated span; returns the tokens taken. */
static long race_run(double rate, double burst, int64_t end_us, int n)
{
	static struct race r;
	memset(&r, 0, sizeof r);
	r.rate = rate, r.burst = burst, r.end_us = end_us;
	pthread_t th[16];
	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, racer, &r), 0);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&r.taken);
}

Test(rate, threads_never_exceed_rate_times_span_plus_burst)
{
	/* 8 threads, 1000/s, burst 50, 5 simulated seconds: at most 1000*5 + 50 */
	long got = race_run(1000, 50, 5000000, 8);
	cr_assert_leq(got, 5050);
	cr_assert_geq(got, 4950, "and close to it: %ld", got);
	/* a decimal rate: 333.3/s over 3 s, burst 5 */
	got = race_run(333.3, 5, 3000000, 8);
	cr_assert_leq(got, (long)(333.3 * 3 + 5));
	cr_assert_geq(got, 980, "%ld", got);
}

Test(throttle, halve_dedupe_and_recover_exactly)
{
	struct throttle t;
	throttle_init(&t, 40, 50);
	cr_assert_eq(t.conn, 40);
	cr_assert_eq(t.rate, 50);
	cr_assert_not(throttle_slowed(&t));
	cr_assert_not(throttle_tick(&t, 100000), "nothing to recover");
	cr_assert(throttle_slow(&t, 0, 0, 0));
	cr_assert_eq(t.conn, 20);
	cr_assert_eq(t.rate, 25);
	cr_assert(throttle_slowed(&t));
	cr_assert_not(throttle_slow(&t, 2000, 0, 0), "same burst of 421s");
	cr_assert_not(throttle_slow(&t, 4999, 0, 0));
	cr_assert_eq(t.conn, 20);
	cr_assert(throttle_slow(&t, 5000, 0, 0), "5 s later: halve again");
	cr_assert_eq(t.conn, 10);
	cr_assert_eq(t.rate, 12.5);
	cr_assert_eq(t.events, 4);
	cr_assert_eq(t.halvings, 2);
	cr_assert_not(throttle_tick(&t, 64999), "not yet 60 s calm");
	cr_assert(throttle_tick(&t, 65000));
	cr_assert_eq(t.conn, 11);
	cr_assert_eq(t.rate, 17.5);
	cr_assert_not(throttle_tick(&t, 94999), "steps are 30 s apart");
	cr_assert(throttle_tick(&t, 95000));
	cr_assert_eq(t.conn, 12);
	cr_assert_eq(t.rate, 22.5);
	int64_t now = 95000;
	for (int k = 3; k <= 30; k++) {
		now += 30000;
		cr_assert(throttle_tick(&t, now), "step %d", k);
		cr_assert_eq(t.conn, 10u + (unsigned)k);
		cr_assert_eq(t.rate, k >= 8 ? 50 : 12.5 + 5 * k, "step %d: %f", k, t.rate);
	}
	cr_assert_eq(t.conn, 40);
	cr_assert_not(throttle_slowed(&t));
	cr_assert_not(throttle_tick(&t, now + 30000));
}

Test(throttle, new_event_during_recovery)
{
	struct throttle t;
	throttle_init(&t, 40, 50);
	throttle_slow(&t, 0, 0, 0);                  /* 20, 25 */
	cr_assert(throttle_tick(&t, 60000));         /* 21, 30 */
	cr_assert(throttle_tick(&t, 90000));         /* 22, 35 */
	cr_assert(throttle_slow(&t, 92000, 0, 0));
	cr_assert_eq(t.conn, 11);
	cr_assert_eq(t.rate, 17.5);
	cr_assert_not(throttle_slow(&t, 95000, 0, 0), "within 5 s of the last halving");
	cr_assert_eq(t.conn, 11);
	cr_assert_not(throttle_tick(&t, 152000), "but it restarts the calm period");
	cr_assert_not(throttle_tick(&t, 154999));
	cr_assert(throttle_tick(&t, 155000));
	cr_assert_eq(t.conn, 12);
	cr_assert_eq(t.rate, 22.5);
	cr_assert_eq(t.events, 3);
	cr_assert_eq(t.halvings, 2);
}

Test(throttle, rate_floor_and_connection_floor)
{
	struct throttle t;
	throttle_init(&t, 4, 0.05);
	cr_assert(throttle_slow(&t, 0, 0, 0));
	cr_assert_eq(t.conn, 2);
	cr_assert_eq(t.rate, 0.025);
	cr_assert(throttle_slow(&t, 5000, 0, 0));
	cr_assert_eq(t.conn, 1);
	cr_assert_eq(t.rate, THROTTLE_MIN_RATE, "not below one a minute");
	cr_assert(throttle_slow(&t, 10000, 0, 0));
	cr_assert_eq(t.conn, 1);
	cr_assert_eq(t.rate, THROTTLE_MIN_RATE);
	throttle_init(&t, 1, 1.0 / 3600);
	throttle_slow(&t, 0, 0, 0);
	cr_assert_eq(t.rate, 1.0 / 3600, "a configured rate under the floor is not raised");
	cr_assert_eq(t.conn, 1);
	cr_assert_not(throttle_slowed(&t));
}

Test(throttle, unlimited_starts_from_what_is_observed)
{
	struct throttle t;
	throttle_init(&t, 0, 0);
	cr_assert_not(throttle_slowed(&t));
	cr_assert(throttle_slow(&t, 0, 8, 100));
	cr_assert_eq(t.conn, 4);
	cr_assert_eq(t.conn_top, 8);
	cr_assert_eq(t.rate, 50);
	cr_assert_eq(t.rate_top, 100);
	cr_assert(throttle_slowed(&t));
	int64_t now = 60000;
	for (int k = 1; k <= 4; k++, now += 30000) {
		cr_assert(throttle_tick(&t, now));
		cr_assert_eq(t.rate, 50 + 10 * k);
		cr_assert_eq(t.conn, k == 4 ? 0 : 4u + (unsigned)k);
	}
	cr_assert_eq(t.conn, 0, "back to unlimited at the observed level");
	cr_assert_eq(t.rate, 90);
	cr_assert(throttle_slowed(&t));
	cr_assert(throttle_tick(&t, now));
	cr_assert_eq(t.rate, 0, "back to unlimited");
	cr_assert_not(throttle_slowed(&t));
	throttle_init(&t, 0, 0);
	throttle_slow(&t, 0, 0, 0);
	cr_assert_eq(t.conn, 0, "nothing observed: stays unlimited");
	cr_assert_eq(t.rate, 0);
	cr_assert_not(throttle_slowed(&t));
}

/* One reply and whether it asks us to slow down. */
struct reply_case { int code; const char *enh; const char *text; bool want; };

Test(throttle, which_replies_are_throttling)
{
	static const struct reply_case c[] = {
		/* Gmail, 421-4.7.28 */
		{421, "4.7.28", "4.7.28 [192.0.2.1] Our system has detected an unusual rate of\n"
		 "4.7.28 unsolicited mail originating from your IP address. To protect our\n"
		 "4.7.28 users from spam, mail sent from your IP address has been temporarily\n"
		 "4.7.28 rate limited.", true},
		/* Yahoo */
		{421, "4.7.0", "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
		 "unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
		 true},
		/* Outlook */
		{451, "4.7.650", "4.7.650 The mail server [192.0.2.1] has been temporarily rate limited "
		 "due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)",
		 true},
		/* Outlook, enhanced code only in the text */
		{451, "", "4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77719)", true},
		{451, NULL, "4.7.1 policy", true},
		{421, "", "Too many concurrent SMTP connections", true},
		{421, "4.4.2", "4.4.2 mx.example.org Error: timeout exceeded", true},
		{450, "", "Rate-limit exceeded, retry in 10 minutes", true},
		{451, "4.3.2", "4.3.2 Concurrent connection limit exceeded", true},
		{450, "4.2.0", "4.2.0 Throttled: too many messages from your IP", true},
		{451, "4.3.0", "4.3.0 Temporarily unavailable, please try again later", true},
		{452, "", "Sending rate exceeded", true},
		{421, NULL, NULL, true},
		/* not throttling */
		{452, "4.5.3", "4.5.3 Too many recipients", false},
		{450, "4.2.1", "4.2.1 mailbox busy", false},
		{450, "4.2.1", "4.2.1 The user you are trying to contact is receiving mail at a rate that\n"
		 "4.2.1 prevents additional messages from being delivered. Please resend your\n"
		 "4.2.1 message at a later time.", false},
		{451, "4.7.1", "4.7.1 Greylisting in action, please come back later", false},
		{451, "4.7.1", "4.7.1 <a@example.org>: Recipient address rejected: Greylisted for 300 "
		 "seconds, try again later", false},
		{450, "4.2.0", "4.2.0 <a@example.org>: Recipient address rejected: Greylisted, see "
		 "http://postgrey.schweikert.ch/help/example.org.html", false},
		{452, "4.2.2", "4.2.2 The email account that you tried to reach is over quota.", false},
		{451, "4.3.0", "4.3.0 Temporary lookup failure", false},
		{550, "5.7.1", "5.7.1 rate limit exceeded", false},
		{554, "5.7.1", "5.7.1 [TSS04] too many connections", false},
		{250, "2.0.0", "2.0.0 OK rate limit", false},
		{451, NULL, NULL, false},
		{0, NULL, NULL, false},
	};
	for (int i = 0; c[i].code; i++) {
		size_t len = c[i].text ? strlen(c[i].text) : 0;
		cr_assert_eq(shaping_is_throttling(c[i].code, c[i].enh, c[i].text, len), c[i].want,
		             "%d %s", c[i].code, c[i].text ? c[i].text : "(null)");
	}
	cr_assert_not(shaping_is_throttling(450, "", "rate limit", 4), "only len octets are read");
	cr_assert(shaping_is_throttling(450, "", "RATE LIMIT", 10), "any case");
}

Test(shaping, rate_ready_peeks_without_taking)
{
	struct rate_limiter r;
	int64_t at = 0;
	rate_init(&r);
	cr_assert(rate_ready(&r, 10, 1, 1000000, NULL));
	cr_assert(rate_ready(&r, 10, 1, 1000000, NULL), "a peek takes nothing");
	cr_assert(rate_take(&r, 10, 1, 1000000, NULL));
	cr_assert(!rate_ready(&r, 10, 1, 1000000, &at));
	cr_assert_eq(at, 1100000, "the same time rate_take would give");
	cr_assert(rate_ready(&r, 10, 1, 1100000, NULL));
	cr_assert(rate_ready(&r, 0, 1, 0, NULL), "no limit");
}
