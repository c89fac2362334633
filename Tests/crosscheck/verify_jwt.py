"""Verifies a Google service-account assertion made by Switchyard with PyJWT, an independent
implementation: signature (RS256 with the given public key), header (alg, kid, typ) and claims
(iss, scope, aud, whole-second iat, exp = iat + 3600, nothing else).

Input on stdin, one JSON object:
  {"public_key_pem", "assertion", "kid", "iss", "aud", "scope", "iat"}
Prints "ok" and exits 0, or prints what is wrong and exits 1.

Time checks are off: the Swift test injects its clock, so `iat` is compared with the expected
value instead of with this machine's time.
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization


def main() -> int:
    given = json.load(sys.stdin)
    public_key = serialization.load_pem_public_key(given["public_key_pem"].encode())
    assertion = given["assertion"]
    problems = []

    header = jwt.get_unverified_header(assertion)
    if header.get("alg") != "RS256":
        problems.append(f"alg is {header.get('alg')!r}, expected RS256")
    if header.get("kid") != given["kid"]:
        problems.append(f"kid is {header.get('kid')!r}, expected {given['kid']!r}")
    if header.get("typ", "JWT") != "JWT":
        problems.append(f"typ is {header.get('typ')!r}")

    try:
        claims = jwt.decode(
            assertion,
            key=public_key,
            algorithms=["RS256"],
            audience=given["aud"],
            issuer=given["iss"],
            options={"require": ["iss", "aud", "iat", "exp"], "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as error:
        print(f"PyJWT rejected the assertion: {type(error).__name__}: {error}")
        return 1

    if claims.get("scope") != given["scope"]:
        problems.append(f"scope is {claims.get('scope')!r}")
    for name in ("iat", "exp"):
        if type(claims.get(name)) is not int:
            problems.append(f"{name} is not a whole number of seconds: {claims.get(name)!r}")
    if claims.get("iat") != given["iat"]:
        problems.append(f"iat is {claims.get('iat')!r}, expected {given['iat']!r}")
    if isinstance(claims.get("exp"), int) and isinstance(claims.get("iat"), int) and claims["exp"] - claims["iat"] != 3600:
        problems.append(f"exp - iat is {claims['exp'] - claims['iat']}, expected 3600")
    extra = set(claims) - {"iss", "scope", "aud", "iat", "exp"}
    if extra:
        problems.append(f"unexpected claims {sorted(extra)}")

    if problems:
        print("; ".join(problems))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
