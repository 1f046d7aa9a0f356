"""Bearer tokens: HS256 JWTs whose `sub` is the user, verified on every request and minted by
`todo-engine token`.

Only HS256 is accepted (never `none`, never an algorithm named by the token), and the secret is at least
256 bits (checked in settings).
"""

from __future__ import annotations

import jwt

from api.problems import Unauthorized

__all__ = ["ALGORITHM", "TokenVerifier", "mint_token"]

ALGORITHM = "HS256"
# Clock skew tolerated on `exp`/`nbf`/`iat` between the minting and the verifying host.
LEEWAY_SECONDS = 30


class TokenVerifier:
    """Checks `Authorization: Bearer <jwt>` and returns the user (`sub`)."""

    def __init__(self, secret: str, *, issuer: str | None = None, audience: str | None = None) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience

    def user_of(self, authorization: str | None) -> str:
        """The user named by an Authorization header value; raises Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("expected an 'Authorization: Bearer <token>' header")
        return self.verify(token.strip())

    def verify(self, token: str) -> str:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200 or not _is_utf8(sub):
            raise Unauthorized("invalid token: 'sub' must be a non-empty string of at most 200 characters")
        return sub


def mint_token(
    secret: str,
    user: str,
    *,
    now: int,
    ttl_seconds: int,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A signed token for `user`, valid from `now` (Unix seconds) for `ttl_seconds`."""
    claims: dict[str, object] = {"sub": user, "iat": now, "exp": now + ttl_seconds}
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _is_utf8(text: str) -> bool:
    # JSON may carry lone surrogates (an escaped \ud800), which no store or header can hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
