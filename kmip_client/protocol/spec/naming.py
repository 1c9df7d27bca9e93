"""The KMIP profiles' rule for turning spec names into XML/JSON names.

Standalone (standard library only) so that tools/gen_spec.py can load it before the
generated tables exist.
"""

from __future__ import annotations

import re

__all__ = ["normalize_name"]


def normalize_name(spec_name: str) -> str:
    """Normalize a spec name the way the KMIP XML/JSON profile encodings do.

    1. round brackets become spaces; 2. a non-word character followed by a letter is a
    word boundary (becomes a space); 3. remaining non-word characters become '_';
    4. leading digits of the first word move to its end ("3DES" -> "DES3");
    5. each word gets an upper-case first letter; 6. the words are concatenated.
    """
    s = re.sub(r"[()]", " ", spec_name)
    s = re.sub(r"[^\w\s](?=[A-Za-z])", " ", s)
    s = re.sub(r"[^\w\s]", "_", s)
    words = s.split()
    if not words:
        return ""
    m = re.match(r"(\d+)(.*)", words[0])
    if m and m.group(2):
        words[0] = m.group(2) + m.group(1)
    return "".join(w[:1].upper() + w[1:] for w in words)
