#!/usr/bin/python3
"""Reads the SMTP sink's Maildir for one run's mails (tests/cluster).

    mail_tickets.py MAILDIR RUN_ID OUTDIR

Prints one line per mail whose recipient is c-RUN_ID-...@example.org:
    KEY PEER PDF
KEY is the recipient's key (RUN_ID-C-I), PEER the address the mail came from
(the X-Peer header aiosmtpd's Mailbox handler adds), PDF the path under
OUTDIR of the mail's application/pdf attachment ("-" if it has none; only
the first mail of a key writes one).
"""
import email
import email.policy
import os
import re
import sys


def main():
    maildir, run_id, outdir = sys.argv[1:4]
    want = re.compile(r"c-(%s-\d+-\d+)@" % re.escape(run_id))
    for name in sorted(os.listdir(maildir)):
        with open(os.path.join(maildir, name), "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        m = want.search(str(msg.get("To", "")))
        if not m:
            continue
        key = m.group(1)
        peer = re.search(r"\d+\.\d+\.\d+\.\d+", str(msg.get("X-Peer", "")))
        peer = peer.group(0) if peer else "-"
        pdf = "-"
        for part in msg.iter_attachments():
            if part.get_content_type() == "application/pdf":
                pdf = os.path.join(outdir, key + ".pdf")
                if not os.path.exists(pdf):
                    with open(pdf, "wb") as out:
                        out.write(part.get_payload(decode=True))
                break
        print(key, peer, pdf)


if __name__ == "__main__":
    main()
