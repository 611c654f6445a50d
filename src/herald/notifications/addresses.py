"""What an address looks like on each channel: the validation rules and the API schema share it.

Deliberately practical, not RFC 5322 complete.
"""

from __future__ import annotations

# One @, no spaces or control characters, a dotted domain of letters, digits and hyphens
# (the lookahead bounds the domain to 253 characters; JSON Schema engines without lookahead
# support still read the rest).
EMAIL = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# E.164: a plus, a country code that does not start with 0, 7 to 15 digits in all.
E164 = r"^\+[1-9][0-9]{6,14}$"
# FCM registration tokens: URL-safe base64 characters and colons, typically ~160 long.
FCM_TOKEN = r"^[A-Za-z0-9_:\-]{32,4096}$"  # noqa: S105 - a pattern, not a secret
# Any of them: what `to` can be before the channel says which.
ANY = "|".join(f"(?:{pattern})" for pattern in (EMAIL, E164, FCM_TOKEN))
