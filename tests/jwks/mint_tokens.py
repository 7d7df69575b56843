"""Keys and tokens as a sign-in provider makes them, for tests/it/api_auth.rs.

PyJWT and `cryptography` (the libraries Auth0's, Cognito's and many teams'
Python backends sign with) make an RSA-2048, a P-256 and an Ed25519 key,
publish their public halves as a JWKS document, and sign the tokens the test
sends: good ones of each algorithm, and every way a token should fail.

Usage: python mint_tokens.py ISSUER AUDIENCE  (prints one JSON object)
"""

import base64
import hashlib
import hmac
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

issuer, audience = sys.argv[1], sys.argv[2]
now = int(time.time())

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
ed_key = ed25519.Ed25519PrivateKey.generate()
# Not in the published set: a forger's key, and the one rotated in later.
impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(algorithm, key, kid, alg):
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg=alg)
    return jwk


published = [
    public_jwk(RSAAlgorithm, rsa_key, "rsa-1", "RS256"),
    public_jwk(ECAlgorithm, ec_key, "ec-1", "ES256"),
    public_jwk(OKPAlgorithm, ed_key, "ed-1", "EdDSA"),
]


def claims(sub, **changes):
    body = {"sub": sub, "iss": issuer, "aud": audience, "iat": now, "exp": now + 600}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def sign(key, alg, kid, body, **headers):
    if kid is not None:
        headers["kid"] = kid
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(kid, body):
    """Algorithm confusion: HS256 'signed' with the RSA key's public PEM,
    which a naive verifier would take as the HMAC secret. PyJWT refuses to
    make this, so it is made by hand."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(body).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


tokens = {
    "rs256": sign(rsa_key, "RS256", "rsa-1", claims("user-rsa")),
    "es256": sign(ec_key, "ES256", "ec-1", claims("user-ec")),
    "eddsa": sign(ed_key, "EdDSA", "ed-1", claims("user-ed")),
    "wrong_issuer": sign(rsa_key, "RS256", "rsa-1", claims("u", iss="https://elsewhere.example/")),
    "wrong_audience": sign(rsa_key, "RS256", "rsa-1", claims("u", aud="another-api")),
    "no_audience": sign(rsa_key, "RS256", "rsa-1", claims("u", aud=None)),
    "expired": sign(rsa_key, "RS256", "rsa-1", claims("u", iat=now - 720, exp=now - 120)),
    "too_long": sign(rsa_key, "RS256", "rsa-1", claims("u", exp=now + 30 * 86400)),
    "no_exp": sign(rsa_key, "RS256", "rsa-1", claims("u", exp=None)),
    "wrong_key": sign(impostor, "RS256", "rsa-1", claims("u")),
    "unknown_kid": sign(impostor, "RS256", "made-up", claims("u")),
    "no_kid": sign(rsa_key, "RS256", None, claims("u")),
    "ec_as_rsa": sign(ec_key, "ES256", "rsa-1", claims("u")),
    "crit": sign(rsa_key, "RS256", "rsa-1", claims("u"), crit=["exp"]),
    "confused": hs256_with_public_key("rsa-1", claims("u")),
    "rotated": sign(rotated, "RS256", "rsa-2", claims("user-rotated")),
    "made_up_kids": [sign(impostor, "RS256", f"made-up-{i}", claims("u")) for i in range(40)],
}

print(
    json.dumps(
        {
            "jwks": {"keys": published},
            "rotated_jwks": {
                "keys": published + [public_jwk(RSAAlgorithm, rotated, "rsa-2", "RS256")]
            },
            "tokens": tokens,
        }
    )
)
