/* bounds.h - every bound volley enforces, in one place (TigerBeetle: put a limit on everything). */
#ifndef VOLLEY_BOUNDS_H
#define VOLLEY_BOUNDS_H

/* Addresses (RFC 5321 4.5.3.1). */
#define ADDR_MAX_LOCAL      64u    /* octets in a local part */
#define ADDR_MAX_DOMAIN     255u   /* octets in a domain */
#define ADDR_MAX_PATH       256u   /* octets in a path, "<" and ">" included */
#define ADDR_MAX_MAILBOX    (ADDR_MAX_PATH - 2u)  /* octets in a bare mailbox */

/* Job file. */
#define JOB_MAX_LINE        8192u  /* octets in one recipient or header line */
#define JOB_MAX_FIELDS      64u    /* extra columns named by "fields:" */
#define JOB_MAX_HEADER_LINES 64u   /* header lines before the empty line */

/* Message (RFC 5321 4.5.3.1.6: 998 octets + CRLF). */
#define MSG_MAX_LINE        998u
#define MSG_MAX_SIZE        (256u * 1024u * 1024u) /* octets in the message file */

/* SMTP replies (RFC 5321 4.5.3.1.5 says 512; we accept more, but bounded). */
#define REPLY_MAX_LINE      2048u  /* octets in one reply line, CRLF included */
#define REPLY_MAX_LINES     64u    /* lines in one multi-line reply */
#define REPLY_MAX_TEXT      4096u  /* octets of reply text kept (all lines) */

/* Commands (RFC 5321 4.5.3.1.4). */
#define SMTP_MAX_CMD        512u   /* octets in one command line, CRLF included */
#define SMTP_MAX_RCPTS      1000u  /* upper bound for --max-recipients */
#define SMTP_MAX_PIPELINE   (2u * SMTP_MAX_RCPTS + 8u) /* replies outstanding at once */

/* Engine. */
#define ENGINE_MAX_THREADS  256u
#define ENGINE_MAX_SESSIONS 65536u /* sessions per thread */
#define SESSION_RECV_BUF    8192u  /* receive buffer per session */

/* Results. */
#define RESULT_MAX_LINE     8192u  /* octets in one JSON result line */
#define RESULT_MAX_REPLY    1024u  /* octets of reply text copied into a result */

#endif
