"""Bearer tokens: HS256 JWTs whose `sub` is the user, verified on every request and minted by
`todo-engine token`.

Every token carries `exp`, and lives at most the configured maximum (`TODO_JWT_MAX_TTL`): from `iat`
to `exp` when it says when it was issued, else from now. A stolen token thus stops working on its own.

Only HS256 is accepted (never `none`, never an algorithm named by the token), and the secret is at least
256 bits (checked in settings). A token that verified once is remembered with its time bounds, so a client's
next requests skip the HMAC and claim checks (only the clock is checked again).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from api.problems import Unauthorized

__all__ = ["ALGORITHM", "TokenVerifier", "mint_token"]

ALGORITHM = "HS256"
# Clock skew tolerated on `exp`/`nbf`/`iat` between the minting and the verifying host.
LEEWAY_SECONDS = 30
# Verified tokens remembered per verifier (oldest forgotten first).
_REMEMBERED = 4096


class TokenVerifier:
    """Checks `Authorization: Bearer <jwt>` and returns the user (`sub`)."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        max_ttl_seconds: int,
        wall: Callable[[], float] = time.time,  # PyJWT's own clock: tests may only move it forward
    ) -> None:
        self._secret = secret
        self._max_ttl = max_ttl_seconds
        self._issuer = issuer
        self._audience = audience
        self._wall = wall
        # token -> (user, instant it stops being valid: `exp` + leeway); `nbf` only matters before the
        # first success, which PyJWT checked
        self._verified: dict[str, tuple[str, float]] = {}

    def user_of(self, authorization: str | None) -> str:
        """The user named by an Authorization header value; raises Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("expected an 'Authorization: Bearer <token>' header")
        return self.verify(token.strip())

    def verify(self, token: str) -> str:
        known = self._verified.get(token)
        if known is not None:
            user, expires = known
            if self._wall() < expires:
                return user
            del self._verified[token]
            raise Unauthorized("the token has expired")
        user, expires = self._check(token)
        if len(self._verified) >= _REMEMBERED:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (user, expires)
        return user

    def _check(self, token: str) -> tuple[str, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"invalid token: it has no '{exc.claim}' claim (tokens must expire)") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 200 or not _is_utf8(sub):
            raise Unauthorized("invalid token: 'sub' must be a non-empty string of at most 200 characters")
        exp = float(claims["exp"])  # PyJWT checked it is a number
        iat = claims.get("iat")  # likewise, when present
        start = float(iat) if isinstance(iat, int | float) else self._wall()
        if exp - start > self._max_ttl + LEEWAY_SECONDS:
            raise Unauthorized(
                f"invalid token: it lives longer than the {self._max_ttl} s this API accepts "
                "(TODO_JWT_MAX_TTL)"
            )
        return sub, exp + LEEWAY_SECONDS


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
