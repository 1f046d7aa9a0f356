"""The Configuration's `accessControl` list, evaluated on the callee side of an invocation as daprd's
pkg/acl does: the caller's identity picks an app policy, the operation (a path trie with `*` and `**`
wildcards) and the HTTP verb pick the action, and anything unmatched falls back to the defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sidecar.daprconfig import ALLOW, AccessControlSpec, AppPolicy

__all__ = ["AccessControlList", "CallerIdentity"]

log = logging.getLogger("sidecar.invoke.acl")


@dataclass(frozen=True)
class CallerIdentity:
    """Who calls: daprd reads it from the caller's mTLS SPIFFE ID; the embedded sidecars pass it along."""

    app_id: str
    namespace: str = "default"
    trust_domain: str = "public"

    def url(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/{self.app_id}"


@dataclass
class _Operation:
    verb_actions: dict[str, str]
    action: str


@dataclass
class _Node:
    part: str
    data: _Operation | None = None
    children: list[_Node] = field(default_factory=list)


class _Trie:
    """daprd's ACL operation trie (pkg/config/acl_trie.go): one node per `/segment`; `/*` matches one last
    segment, `/**` any rest, and `*` inside a segment any characters."""

    def __init__(self) -> None:
        self.root = _Node("/")

    def put(self, operation: str, data: _Operation) -> None:
        parts = operation.split("/")
        node = self.root
        for index, raw in enumerate(parts[1:], start=1):
            part = "/" + raw
            found = next((n for n in node.children if n.part == part), None)
            last = index == len(parts) - 1
            if found is None:
                found = _Node(part, data if last else None)
                node.children.append(found)
            elif last and found.data is None:
                found.data = data
            node = found

    def search(self, operation: str) -> _Operation | None:
        parts = operation.split("/")
        node: _Node | None = self.root
        for index, raw in enumerate(parts[1:], start=1):
            assert node is not None
            last = index == len(parts) - 1
            node = _find(node.children, "/" + raw, last)
            if node is None:
                return None
            if node.data is not None:
                if not last and node.part.endswith("/*") and not node.part.endswith("/**"):
                    continue
                return node.data
            if last:
                wild = _find(node.children, "/*", last)
                if wild is not None and wild.data is not None:
                    return wild.data
        return None


def _find(nodes: list[_Node], part: str, last: bool) -> _Node | None:
    for node in nodes:
        if node.part == part:
            return node
        if node.part == "/*":
            if last:
                return node
            continue
        if node.part == "/**" or _glob(part, node.part):
            return node
    return None


def _glob(target: str, pattern: str) -> bool:
    """`*` matches any run of characters (possibly none); everything else matches itself."""
    match = [[False] * (len(pattern) + 1) for _ in range(len(target) + 1)]
    match[0][0] = True
    for j, ch in enumerate(pattern, start=1):
        if ch != "*":
            break
        match[0][j] = True
    for i in range(1, len(target) + 1):
        for j in range(1, len(pattern) + 1):
            if pattern[j - 1] == "*":
                match[i][j] = match[i][j - 1] or match[i - 1][j]
            elif target[i - 1] == pattern[j - 1]:
                match[i][j] = match[i - 1][j - 1]
    return match[len(target)][len(pattern)]


class AccessControlList:
    """Decides whether a caller may invoke an operation on this sidecar's app (`is_http`: the app channel
    is HTTP, so operations match case-insensitively and HTTP verbs count)."""

    def __init__(self, spec: AccessControlSpec, *, is_http: bool = True) -> None:
        self.spec = spec
        self.is_http = is_http
        self._policies: dict[tuple[str, str], tuple[AppPolicy, _Trie]] = {}
        for policy in spec.policies:
            trie = _Trie()
            for op in policy.operations:
                name = op.name if op.name.startswith("/") else "/" + op.name
                if is_http:
                    name = name.lower()
                trie.put(name, _Operation({verb: op.action for verb in op.verbs}, op.action))
            self._policies[(policy.app_id, policy.namespace)] = (policy, trie)

    def check(self, caller: CallerIdentity | None, operation: str, verb: str) -> tuple[bool, str]:
        """(allowed, daprd's denial message). `verb` is the HTTP verb, or "" for none."""
        action = self._action(caller, operation, verb)
        if action.lower() == ALLOW:
            return True, ""
        who = caller.url() if caller is not None else ""
        message = (
            f"access control policy has denied access to id: {who} operation: {operation} "
            f"verb: {verb or 'NONE'}"
        )
        log.debug("%s", message)
        return False, message

    def _action(self, caller: CallerIdentity | None, operation: str, verb: str) -> str:
        action = self.spec.default_action
        if caller is None:
            return action
        found = self._policies.get((caller.app_id, caller.namespace))
        if found is None:
            return action
        policy, trie = found
        if policy.trust_domain != caller.trust_domain:
            return action
        if policy.default_action:
            action = policy.default_action
        if not operation.startswith("/"):
            operation = "/" + operation
        if self.is_http:
            operation = operation.lower()
        op = trie.search(operation)
        if op is None:
            return action
        if not self.is_http:
            return op.action
        if not verb:
            return policy.default_action
        return op.verb_actions.get(verb, op.verb_actions.get("*", action))
