/* test_category.c - unit tests for category.c: real servers' replies and volley's own reasons, table-driven. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "category.h"
#include "results.h"

/* One outcome and the category it must get. */
struct ccase {
	enum result_status st;
	int code;
	const char *enh;
	const char *text;
	const char *want;
};

#define B RS_BOUNCED
#define D RS_DEFERRED
#define F RS_FAILED

/* Replies as servers send them (reply.c joins the lines of a multi-line reply with "\n"
 * and keeps the enhanced code at the start of each line's text). */
static const struct ccase server_cases[] = {
	/* Gmail */
	{ B, 550, "5.1.1", "5.1.1 The email account that you tried to reach does not exist. Please try\n"
	  "5.1.1 double-checking the recipient's email address for typos or\n"
	  "5.1.1 unnecessary spaces. For more information, go to\n"
	  "5.1.1  https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-5e0c1b5b5c2si123456a12.123 - gsmtp",
	  "bad-mailbox" },
	{ B, 550, "5.2.1", "5.2.1 The email account that you tried to reach is disabled. For more\n"
	  "5.2.1 information, go to\n5.2.1  https://support.google.com/mail/?p=DisabledUser - gsmtp",
	  "bad-mailbox" },
	{ D, 450, "4.2.1", "4.2.1 The user you are trying to contact is receiving mail at a rate that\n"
	  "4.2.1 prevents additional messages from being delivered. Please resend your\n"
	  "4.2.1 message at a later time. - gsmtp", "throttled" },
	{ D, 452, "4.2.2", "4.2.2 The recipient's inbox is out of storage space. Please direct the\n"
	  "4.2.2 recipient to\n4.2.2  https://support.google.com/mail/?p=OverQuotaTemp - gsmtp", "quota" },
	{ B, 552, "5.2.2", "5.2.2 The recipient's inbox is out of storage space and inactive. Please direct\n"
	  "5.2.2 the recipient to\n5.2.2  https://support.google.com/mail/?p=OverQuotaPerm - gsmtp", "quota" },
	{ B, 552, "5.2.3", "5.2.3 Your message exceeded Google's message size limits. For more\n"
	  "5.2.3 information, go to\n5.2.3  https://support.google.com/mail/?p=MaxSizeError - gsmtp",
	  "content" },
	{ D, 421, "4.7.28", "4.7.28 [203.0.113.5      15] Our system has detected an unusual rate of\n"
	  "4.7.28 unsolicited mail originating from your IP address. To protect our\n"
	  "4.7.28 users from spam, mail sent from your IP address has been temporarily\n"
	  "4.7.28 rate limited. For more information, go to\n"
	  "4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError - gsmtp", "throttled" },
	{ B, 550, "5.7.1", "5.7.1 [203.0.113.5      12] Our system has detected that this message is\n"
	  "5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n"
	  "5.7.1 this message has been blocked. For more information, go to\n"
	  "5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError - gsmtp", "spam" },
	{ D, 421, "4.7.0", "4.7.0 [203.0.113.5      15] Our system has detected an unusual rate of\n"
	  "4.7.0 unsolicited mail originating from your IP address. To protect our\n"
	  "4.7.0 users from spam, mail sent from your IP address has been temporarily\n"
	  "4.7.0 blocked. - gsmtp", "spam" },
	{ D, 421, "4.7.0", "4.7.0 This message is suspicious due to the very low reputation of the\n"
	  "4.7.0 sending domain. - gsmtp", "spam" },
	{ D, 421, "4.7.0", "4.7.0 Try again later, closing connection. (EHLO) - gsmtp", "throttled" },
	{ B, 550, "5.7.26", "5.7.26 Unauthenticated email from example.com is not accepted due to\n"
	  "5.7.26 domain's DMARC policy. - gsmtp", "policy" },
	{ B, 550, "5.7.25", "5.7.25 [2001:db8::5] The IP address sending this message does not have a\n"
	  "5.7.25 PTR record setup. - gsmtp", "policy" },
	{ D, 452, "4.5.3", "4.5.3 Your message has too many recipients. - gsmtp", "throttled" },
	{ B, 550, "5.4.5", "5.4.5 Daily user sending limit exceeded. - gsmtp", "throttled" },
	{ B, 530, "5.7.0", "5.7.0 Must issue a STARTTLS command first. - gsmtp", "tls" },
	{ D, 421, "4.3.0", "4.3.0 Temporary System Problem.  Try again later (10). - gsmtp", "throttled" },

	/* Yahoo / AOL */
	{ D, 421, "4.7.0", "4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected "
	  "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
	  "throttled" },
	{ D, 421, "4.7.0", "4.7.0 [TSS09] All messages from 203.0.113.5 will be permanently deferred; "
	  "Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes", "policy" },
	{ B, 553, "5.7.1", "5.7.1 [BL21] Connections will not be accepted from 203.0.113.5, because the ip "
	  "is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", "spam" },
	{ B, 554, "5.7.9", "5.7.9 Message not accepted for policy reasons.  See "
	  "https://postmaster.yahooinc.com/error-codes", "policy" },
	{ B, 554, NULL, "delivery error: dd This user doesn't have a yahoo.com account (alice@yahoo.com) "
	  "[0] - mta1234.mail.bf1.yahoo.com", "bad-mailbox" },
	{ B, 552, NULL, "1 Requested mail action aborted, mailbox not found", "bad-mailbox" },
	{ D, 451, NULL, "Message temporarily deferred - [160]", "throttled" },

	/* Microsoft (Outlook.com, Exchange Online, Exchange) */
	{ B, 550, "5.7.708", "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. "
	  "For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(7230) "
	  "[BN1NAM02FT045.eop-nam02.prod.protection.outlook.com]", "spam" },
	{ B, 550, "5.7.606", "5.7.606 Access denied, banned sending IP [203.0.113.5]. To request removal from "
	  "this list please visit https://sender.office.com/ and follow the directions. For more "
	  "information please go to  http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430)", "spam" },
	{ B, 550, "5.4.1", "5.4.1 Recipient address rejected: Access denied. AS(201806281) "
	  "[DB5PEPF00014B9B.eurprd02.prod.outlook.com 2024-01-10T09:12:44.123Z 08DC10F1A1B2C3D4]",
	  "bad-mailbox" },
	{ B, 550, "5.1.10", "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
	  "bad-mailbox" },
	{ B, 550, "5.5.0", "5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
	  "[AM4PEPF00027A5F.eurprd04.prod.outlook.com 2024-02-01T10:00:00.000Z 08DC22D1C2B3A4F5]",
	  "bad-mailbox" },
	{ B, 550, "5.7.1", "5.7.1 Service unavailable, Client host [203.0.113.5] blocked using Spamhaus. To "
	  "request removal from this list see https://www.spamhaus.org/query/ip/203.0.113.5 AS(1450)",
	  "spam" },
	{ D, 451, "4.7.500", "4.7.500 Server busy. Please try again later from [203.0.113.5]. (S77719) "
	  "[VI1EUR04FT012.eop-eur04.prod.protection.outlook.com]", "throttled" },
	{ B, 550, "5.7.509", "5.7.509 Access denied, sending domain [EXAMPLE.COM] does not pass DMARC "
	  "verification and has a DMARC policy of reject.", "policy" },
	{ B, 530, "5.7.57", "5.7.57 Client not authenticated to send mail. [AM0PR10CA0012.EURPRD10.PROD.OUTLOOK.COM]",
	  "auth" },
	{ B, 530, "5.7.1", "5.7.1 Client was not authenticated", "auth" },
	{ B, 550, "5.4.4", "5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain", "bad-domain" },
	{ D, 452, "4.3.1", "4.3.1 Insufficient system resources", "quota" },

	/* Postfix */
	{ B, 550, "5.1.1", "5.1.1 <nobody@example.com>: Recipient address rejected:\n"
	  "User unknown in virtual mailbox table", "bad-mailbox" },
	{ B, 550, "5.1.1", "5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local "
	  "recipient table", "bad-mailbox" },
	{ B, 554, "5.7.1", "5.7.1 <x@example.org>: Relay access denied", "policy" },
	{ B, 554, "5.7.1", "5.7.1 Service unavailable; Client host [203.0.113.5] blocked using "
	  "zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.5", "spam" },
	{ D, 450, "4.7.1", "4.7.1 Client host rejected: cannot find your hostname, [203.0.113.5]", "policy" },
	{ D, 450, "4.1.8", "4.1.8 <news@nosuch.example>: Sender address rejected: Domain not found", "policy" },
	{ B, 550, "5.1.0", "5.1.0 <news@example.com>: Sender address rejected: undeliverable address",
	  "policy" },
	{ D, 450, "4.2.0", "4.2.0 <carol@example.net>: Recipient address rejected: Greylisted, see "
	  "http://postgrey.schweikert.ch/help/example.net.html", "throttled" },
	{ D, 451, "4.7.1", "4.7.1 Greylisted, please try again later", "throttled" },
	{ D, 452, "4.3.1", "4.3.1 Insufficient system storage", "quota" },
	{ B, 552, "5.3.4", "5.3.4 Message size exceeds fixed limit", "content" },
	{ B, 552, "5.2.2", "5.2.2 <bob@example.com>: Recipient address rejected: Mailbox full", "quota" },
	{ D, 421, "4.3.2", "4.3.2 Service currently unavailable", "throttled" },
	{ D, 421, "4.7.0", "4.7.0 mx.example.com Error: too many errors", "throttled" },
	{ D, 450, "4.1.1", "4.1.1 <who@example.com>: Recipient address rejected: unverified address: "
	  "host mx.example.com[192.0.2.1] said: 550 5.1.1 User unknown", "bad-mailbox" },
	{ B, 550, "5.7.1", "5.7.1 Client host rejected: Access denied", "policy" },
	{ B, 554, "5.7.1", "5.7.1 Message rejected as spam by Content Filtering", "spam" },
	{ B, 501, "5.5.2", "5.5.2 Syntax: RCPT TO:<address>", "protocol" },
	{ B, 554, "5.6.0", "5.6.0 Message rejected: content marker found", "content" },

	/* Exim, Sendmail, qmail and others */
	{ B, 550, NULL, "Unrouteable address", "bad-mailbox" },
	{ B, 550, NULL, "Verification failed for <news@example.com>\nSender verify failed", "policy" },
	{ B, 550, NULL, "Administrative prohibition", "policy" },
	{ B, 552, NULL, "Message size exceeds maximum permitted", "content" },
	{ D, 451, NULL, "Temporary local problem - please try later", "throttled" },
	{ B, 550, "5.2.2", "5.2.2 bob@example.org: mailbox is full: blocks limit exceeded (2200): retry "
	  "timeout exceeded", "quota" },
	{ B, 550, "5.1.1", "5.1.1 <x@example.org>... User unknown", "bad-mailbox" },
	{ B, 550, "5.7.1", "5.7.1 <x@example.org>... Relaying denied. Proper authentication required.",
	  "policy" },
	{ D, 421, "4.3.2", "4.3.2 Connection rate limit exceeded.", "throttled" },
	{ B, 553, "5.3.0", "5.3.0 <x@example.org>... No such user here", "bad-mailbox" },
	{ B, 553, NULL, "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", "policy" },
	{ B, 550, NULL, "sorry, no mailbox here by that name. (#5.1.1)", "bad-mailbox" },
	{ B, 554, NULL, "resimta-ch2-18v.sys.comcast.net comcast 203.0.113.5 found on one or more DNSBLs, "
	  "see http://postmaster.comcast.net/smtp-error-codes.php#BL000001", "spam" },
	{ B, 550, "5.7.1", "5.7.1 [CS01] Message rejected due to local policy. Please visit "
	  "https://support.apple.com/en-us/HT204137", "policy" },
	{ B, 550, NULL, "Requested action not taken: mailbox unavailable", "bad-mailbox" },
	{ B, 550, NULL, "No such user here", "bad-mailbox" },
	{ B, 550, NULL, "User unknown", "bad-mailbox" },
	{ D, 452, NULL, "Too many recipients", "throttled" },
	{ B, 552, NULL, "Requested mail action aborted: exceeded storage allocation", "quota" },
	{ D, 421, NULL, "Too many concurrent SMTP connections from this IP address; please try again later.",
	  "throttled" },
	{ D, 451, NULL, "Greylisted, please try again in 300 seconds", "throttled" },
	{ B, 550, NULL, "Message rejected because it contains a virus", "content" },
	{ B, 550, NULL, "Relaying denied", "policy" },
	{ B, 554, NULL, "Your access to this mail system has been rejected due to the sending MTA's poor "
	  "reputation.", "spam" },
	{ B, 550, NULL, "Blocked - see https://ipcheck.proofpoint.com/?ip=203.0.113.5", "spam" },
	{ B, 550, NULL, "Host or domain name not found. Name service error for name=example.invalid "
	  "type=A: Host not found", "bad-domain" },
	{ B, 550, "5.1.2", "5.1.2 Bad destination system address", "bad-domain" },
	{ B, 550, "5.1.10", "5.1.10 Recipient address has null MX", "no-mx" },
	{ B, 556, NULL, "Domain does not accept mail", "no-mx" },
	{ B, 521, NULL, "mx.example.com does not accept mail", "no-mx" },
	{ D, 451, "4.4.3", "4.4.3 Directory server failure", "dns" },
	{ D, 451, "4.4.1", "4.4.1 No answer from host", "connection" },
	{ D, 451, "4.4.2", "4.4.2 Bad connection", "connection" },
	{ D, 451, "4.4.7", "4.4.7 Delivery time expired", "timeout" },
	{ B, 554, "5.7.10", "5.7.10 Encryption Needed", "tls" },
	{ B, 530, "5.7.11", "5.7.11 Encryption required for requested authentication mechanism", "tls" },
	{ B, 550, "5.7.13", "5.7.13 User account disabled: authentication refused", "auth" },
	{ B, 550, "5.7.23", "5.7.23 SPF validation failed", "policy" },
	{ B, 550, "5.7.27", "5.7.27 Sender address has null MX", "policy" },
	{ B, 550, "5.3.3", "5.3.3 Unrecognized command", "protocol" },
	{ B, 500, NULL, "Command unrecognized", "protocol" },
	{ B, 502, NULL, "Unknown command", "protocol" },
	{ B, 503, NULL, "Bad sequence of commands", "protocol" },
	{ B, 554, NULL, "mx.example.com ESMTP not accepting messages", "policy" },
	{ D, 421, NULL, "mx.example.com Service not available, closing transmission channel", "throttled" },
	{ B, 550, NULL, "Nope.", "other" },
	{ D, 450, NULL, "", "other" },
	{ D, 451, "4.3.0", "4.3.0 Error: queue file write error", "other" },
	{ B, 550, "5.0.0", "5.0.0 Denied", "policy" },
	{ D, 454, "4.7.0", "4.7.0 TLS not available due to local problem", "tls" },
	{ D, 451, "4.3.0", "4.3.0 try again later", "throttled" },   /* the aiosmtpd test server */

	/* Replies volley wraps (auth failures, refused STARTTLS): the wrapper decides. */
	{ F, 535, "5.7.8", "authentication failed: 535 5.7.8 Username and Password not accepted. For more "
	  "information, go to\n5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp", "auth" },
	{ D, 454, "4.7.0", "authentication failed: 454 4.7.0 Temporary authentication failure", "auth" },
	{ F, 535, NULL, "authentication failed: 535 Incorrect authentication data", "auth" },
	{ D, 454, "4.7.0", "STARTTLS refused: 454 4.7.0 TLS not available due to local problem", "tls" },
	{ B, 554, "5.7.0", "STARTTLS refused: 554 5.7.0 Too many connections", "tls" },
};

/* volley's own reasons (code 0): every family the engine, routing, SMTP, TLS and job
 * code writes. */
static const struct ccase local_cases[] = {
	{ D, 0, NULL, "connect to 203.0.113.5:25: Connection refused", "connection" },
	{ D, 0, NULL, "connect to [2001:db8::1]:25: Network is unreachable", "connection" },
	{ D, 0, NULL, "connect to 203.0.113.5:25: timed out", "connection" },
	{ D, 0, NULL, "connection closed by 192.0.2.10:25", "connection" },
	{ D, 0, NULL, "receive failed: Connection reset by peer", "connection" },
	{ D, 0, NULL, "receive failed: Interrupted system call", "connection" },
	{ D, 0, NULL, "send failed: Broken pipe", "connection" },
	{ D, 0, NULL, "timed out waiting for the server (192.0.2.10:25)", "timeout" },
	{ D, 0, NULL, "socket: Too many open files", "local" },
	{ D, 0, NULL, "TLS with 192.0.2.10:25 failed: certificate has expired", "tls" },
	{ D, 0, NULL, "TLS with 192.0.2.10:25 failed: certificate name mismatch (wanted mx.example.com)", "tls" },
	{ D, 0, NULL, "TLS with 192.0.2.10:25 failed: unable to get local issuer certificate (unknown CA)",
	  "tls" },
	{ D, 0, NULL, "TLS with 192.0.2.10:465 failed: connection closed during TLS handshake", "tls" },
	{ D, 0, NULL, "TLS: peer closed TLS (close_notify)", "tls" },
	{ D, 0, NULL, "TLS: TLS is not configured", "tls" },
	{ D, 0, NULL, "TLS is required but the server does not offer STARTTLS", "tls" },
	{ F, 0, NULL, "the server does not offer AUTH PLAIN or LOGIN", "auth" },
	{ F, 0, NULL, "refusing to send credentials without TLS (use --allow-plaintext-auth to allow it)",
	  "auth" },
	{ F, 0, NULL, "message has 8-bit content but the server does not advertise 8BITMIME; not sent",
	  "content" },
	{ F, 0, NULL, "message is 2097152 octets, over the server's SIZE limit of 1048576; not sent",
	  "content" },
	{ F, 0, NULL, "sender address needs SMTPUTF8, which the server does not advertise; not sent",
	  "content" },
	{ F, 0, NULL, "address needs SMTPUTF8, which the server does not advertise; not sent", "content" },
	{ D, 0, NULL, "protocol error: reply to no command", "protocol" },
	{ D, 0, NULL, "protocol error: expected 354 after DATA, got 250", "protocol" },
	{ D, 0, NULL, "protocol error: 3xx reply to the end of data", "protocol" },
	{ D, 0, NULL, "protocol error: reply line too long", "protocol" },
	{ D, 0, NULL, "protocol error: bad reply code", "protocol" },
	{ D, 0, NULL, "protocol error: internal: output queue full", "local" },
	{ B, 0, "5.1.2", "domain nosuch.example does not exist (NXDOMAIN)", "bad-domain" },
	{ B, 0, "5.1.10", "domain nullmx.example accepts no mail (null MX, RFC 7505)", "no-mx" },
	{ D, 0, "4.4.3", "DNS lookup of broken.example MX failed: DNS timeout: no answer", "dns" },
	{ D, 0, "4.4.3", "DNS lookup of broken.example MX failed: no DNS server answered (port unreachable "
	  "or connection refused)", "dns" },
	{ D, 0, "4.4.3", "DNS lookup of loop.example MX: CNAME chain longer than 8", "dns" },
	{ D, 0, "4.4.3", "no address found for the mail exchangers (10 mx.example.com)", "dns" },
	{ D, 0, "4.4.3", "no IPv6 address found for the mail exchangers (0 mx.example.com)", "dns" },
	{ F, 0, NULL, "cannot route: the domain is an address literal or not an ASCII host name (IDN is "
	  "not supported yet)", "local" },
	{ D, 0, "4.3.0", "too many domains in one thread (65536)", "local" },
	{ D, 0, "4.3.0", "out of memory routing example.com", "local" },
	{ D, 0, "4.3.0", "internal queue full", "local" },
	{ D, 0, NULL, "not attempted: the run was interrupted", "interrupted" },
	{ D, 0, NULL, "not attempted: engine thread 1 could not start: out of memory for 32768 "
	  "sessions", "local" },
	{ D, 0, NULL, "not attempted: engine thread 0 failed: io_uring_enter: Input/output error", "local" },
	{ D, 0, NULL, "engine thread 0 failed (io_uring_enter: Input/output error), while talking to "
	  "127.0.0.1:25; the message may have been accepted", "local" },
	{ D, 0, NULL, "the run was interrupted before the server answered (192.0.2.10:25); the message may "
	  "have been accepted", "interrupted" },
	/* bad job lines */
	{ F, 0, NULL, "bad line", "local" },
	{ F, 0, NULL, "control character (0x01) in record", "local" },
	{ F, 0, NULL, "unbalanced quotes", "local" },
	{ F, 0, NULL, "quote inside unquoted field", "local" },
	{ F, 0, NULL, "garbage after closing quote", "local" },
	{ F, 0, NULL, "expected 3 columns (address + fields), found 2", "local" },
	{ F, 0, NULL, "expected 1 column (address only), found 4", "local" },
	{ F, 0, NULL, "line longer than 8192 octets", "local" },
	{ F, 0, NULL, "missing '@'", "local" },
	{ F, 0, NULL, "domain label longer than 63 octets", "local" },
	{ F, 0, NULL, "domain longer than 255 octets", "local" },
	{ F, 0, NULL, "local part longer than 64 octets", "local" },
	{ F, 0, NULL, "invalid character in domain", "local" },
	{ F, 0, NULL, "address longer than 254 octets", "local" },
	{ F, 0, NULL, "bad address: empty local part", "local" },
	/* a reason this table does not know yet: the enhanced code, then the status */
	{ B, 0, "5.1.1", "some future reason", "bad-mailbox" },
	{ D, 0, NULL, "some future reason", "other" },
};

/* check_cases - every case of the table gets its category. */
static void check_cases(const struct ccase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = category_of(c[i].st, c[i].code, c[i].enh, c[i].text, strlen(c[i].text));
		cr_expect(got != NULL && strcmp(got, c[i].want) == 0,
		          "case %zu: %d %s \"%.80s\": got %s, want %s", i, c[i].code,
		          c[i].enh ? c[i].enh : "-", c[i].text, got ? got : "NULL", c[i].want);
	}
}

Test(category, real_server_replies)
{
	check_cases(server_cases, sizeof server_cases / sizeof server_cases[0]);
}

Test(category, volley_local_reasons)
{
	check_cases(local_cases, sizeof local_cases / sizeof local_cases[0]);
}

Test(category, delivered_has_none)
{
	cr_assert_null(category_of(RS_DELIVERED, 250, "2.0.0", "2.0.0 Ok: queued as 4F1A", 25));
	cr_assert_null(category_of(RS_DELIVERED, 550, "5.1.1", "5.1.1 User unknown", 18));
	cr_assert_null(category_of(RS_DELIVERED, 0, NULL, NULL, 0));
}

Test(category, only_the_given_length_is_read)
{
	/* The text after len must not count: "spam" lies beyond it. */
	const char *t = "5.7.1 Message refused by policy spam";
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "5.7.1", t, 31), "policy");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "5.7.1", t, strlen(t)), "spam");
	/* NUL octets inside the text are just octets. */
	const char nul[] = "x\0user unknown";
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, NULL, nul, sizeof nul - 1), "bad-mailbox");
}

Test(category, case_does_not_matter)
{
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, NULL, "USER UNKNOWN", 12), "bad-mailbox");
	cr_assert_str_eq(category_of(RS_DEFERRED, 450, NULL, "GrEyLiStEd", 10), "throttled");
}

Test(category, malformed_enhanced_codes_fall_back)
{
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "5.1", "User unknown", 12), "bad-mailbox");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "5.1.1234", "Nope", 4), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "x.1.1", "Nope", 4), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "", "Nope", 4), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "5.1.1 ", "Nope", 4), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, "5.9.9", "Nope", 4), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, NULL, "(#5.1.1", 7), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 550, NULL, NULL, 0), "other");
	cr_assert_str_eq(category_of(RS_BOUNCED, 554, NULL, NULL, 5), "policy");
}

/* is_documented - whether name is one of the categories category.h lists. */
static int is_documented(const char *name)
{
	static const char *const names[] = {
		"bad-mailbox", "bad-domain", "no-mx", "policy", "spam", "quota", "throttled", "tls", "dns",
		"protocol", "timeout", "connection", "local", "auth", "content", "interrupted", "other",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

Test(category, every_table_answer_is_documented)
{
	for (size_t i = 0; i < sizeof server_cases / sizeof server_cases[0]; i++)
		cr_assert(is_documented(server_cases[i].want), "%s", server_cases[i].want);
	for (size_t i = 0; i < sizeof local_cases / sizeof local_cases[0]; i++)
		cr_assert(is_documented(local_cases[i].want), "%s", local_cases[i].want);
}

/* rnd - a small fixed-seed generator (xorshift64). */
static uint64_t rnd_state = 0x2545f4914f6cdd1du;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

Test(category, random_input_always_gets_a_documented_name)
{
	static const char *const bits[] = {
		"5.", "4.", "2.", ".", "1", "7", "10", "(#", ")", "user", " unknown", "spam", "rate",
		"limit", "tls", "auth", "not attempted", "connect to ", "protocol error", "dns", "\n",
		"\0", "\xff", "greylist", "quota", "mailbox", "denied", "#5.1.1)", "(#4.7.0)",
	};
	static char text[3000], enh[40];
	for (int i = 0; i < 20000; i++) {
		size_t n = 0, cap = rnd() % sizeof text;
		while (n < cap) {
			const char *b = bits[rnd() % (sizeof bits / sizeof bits[0])];
			size_t bl = b[0] ? strlen(b) : 1;
			if (n + bl > cap)
				break;
			memcpy(text + n, b, bl);
			n += bl;
		}
		size_t el = 0, ecap = rnd() % (sizeof enh - 1);
		while (el < ecap) {
			const char *b = bits[rnd() % 7];
			size_t bl = strlen(b);
			if (el + bl > ecap)
				break;
			memcpy(enh + el, b, bl);
			el += bl;
		}
		enh[el] = '\0';
		uint64_t pick = rnd();
		enum result_status st = (enum result_status)(1 + pick % 3);
		int code = (pick & 8) ? 0 : (int)(rnd() % 700) - 50;
		const char *got = category_of(st, code, (pick & 16) ? NULL : enh, text, n);
		cr_assert_not_null(got);
		cr_assert(is_documented(got), "undocumented category %s", got);
	}
}
