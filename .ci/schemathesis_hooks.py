"""Schemathesis hooks for the contract step of .ci/run (see .ci/schemathesis.toml).

A multipart part's name travels inside its Content-Disposition header, where RFC 9110 §5.5 allows
no control characters. The specs leave a form open to extra fields (the providers ignore them), so
Schemathesis generates field names of any characters and writes control characters into the part
header raw: the body is then malformed multipart, which any server refuses with 400 whatever the
schema says. Such cases are not generated; every other name, and every value, still is.
"""

import schemathesis


def _is_header_safe(name):
    return not any(ord(char) < 0x20 or ord(char) == 0x7F for char in name)


@schemathesis.hook
def filter_case(context, case):
    if not (case.media_type or "").startswith("multipart/") or not isinstance(case.body, dict):
        return True
    return all(_is_header_safe(str(name)) for name in case.body)
