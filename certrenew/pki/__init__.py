"""The certificate library: reading certificates, CSRs and keys, and the rules they must meet.

It imports nothing of ours outside certrenew.pki, only the standard library and
`cryptography`, so it can be tested, reused and reviewed on its own. Rules take
plain values (see csr.SubjectRules) and failures are pki.errors.CertificateError;
the rest of the project adapts its settings and error handling to them, never
the other way round.
"""
