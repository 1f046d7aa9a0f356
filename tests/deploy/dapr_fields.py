"""Names daprd 1.16 and its components accept: pod annotations and component metadata fields.

From the sidecar injector (`pkg/injector/annotations`), daprd's own metadata (actor state store, key
prefixes, topic scoping) and components-contrib's `metadata.yaml` of each component type this project uses.
"""

from __future__ import annotations

__all__ = ["ALLOWED_VALUES", "ANNOTATIONS", "API", "BOOLEANS", "COMPONENT_METADATA", "DURATIONS"]

API = "dapr.io/v1alpha1"

# dapr.io/* pod annotations the 1.16 sidecar injector reads (pkg/injector/annotations).
ANNOTATIONS = frozenset(
    "dapr.io/" + key
    for key in (
        "enabled app-port config app-protocol app-id enable-profiling log-level api-token-secret "
        "app-token-secret log-as-json app-max-concurrency enable-metrics metrics-port enable-debug "
        "debug-port env env-from-secret grpc-port internal-grpc-port sidecar-cpu-request sidecar-cpu-limit "
        "sidecar-memory-request sidecar-memory-limit sidecar-listen-addresses "
        "sidecar-liveness-probe-delay-seconds sidecar-liveness-probe-timeout-seconds "
        "sidecar-liveness-probe-period-seconds sidecar-liveness-probe-threshold "
        "sidecar-readiness-probe-delay-seconds sidecar-readiness-probe-timeout-seconds "
        "sidecar-readiness-probe-period-seconds sidecar-readiness-probe-threshold sidecar-image "
        "sidecar-seccomp-profile-type max-body-size read-buffer-size graceful-shutdown-seconds "
        "block-shutdown-duration enable-api-logging unix-domain-socket-path volume-mounts volume-mounts-rw "
        "disable-builtin-k8s-secret-store enable-app-health-check app-health-check-path "
        "app-health-probe-interval app-health-probe-timeout app-health-threshold placement-host-address "
        "scheduler-host-address pluggable-components pluggable-components-sockets-folder "
        "component-container inject-pluggable-components app-channel-address sentry-request-jwt-audiences"
    ).split()
)

# Metadata daprd reads itself, by building block (actor state store, key prefixes, topic scoping).
_STATE_BUILTIN = {"actorStateStore", "keyPrefix"}
_BINDING_BUILTIN = {"direction", "route"}
_PUBSUB_BUILTIN = {"allowedTopics", "protectedTopics", "publishingScopes", "subscriptionScopes", "consumerID"}

# (type, version) -> accepted metadata names, required names.
COMPONENT_METADATA: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {
    ("state.sqlite", "v1"): (
        frozenset(
            _STATE_BUILTIN
            | {"connectionString", "timeout", "busyTimeout", "disableWAL", "tableName", "metadataTableName"}
            | {"cleanupInterval"}
        ),
        frozenset({"connectionString"}),
    ),
    ("state.postgresql", "v2"): (
        frozenset(
            _STATE_BUILTIN
            | {"connectionString", "timeout", "tablePrefix", "metadataTableName", "cleanupInterval"}
            | {"maxConns", "connectionMaxIdleTime", "queryExecMode", "host", "hostaddr", "port", "database"}
            | {"user", "password", "sslRootCert"}
        ),
        frozenset(),
    ),
    ("pubsub.in-memory", "v1"): (frozenset(_PUBSUB_BUILTIN), frozenset()),
    # components-contrib bindings/cron/metadata.yaml, plus what daprd reads of every binding
    ("bindings.cron", "v1"): (frozenset({"schedule"} | _BINDING_BUILTIN), frozenset({"schedule"})),
    ("pubsub.redis", "v1"): (
        frozenset(
            _PUBSUB_BUILTIN
            | {
                "redisHost",
                "redisPort",
                "redisUsername",
                "redisPassword",
                "enableTLS",
                "insecureSkipTLSVerify",
            }
            | {
                "clientCert",
                "clientKey",
                "redeliverInterval",
                "processingTimeout",
                "queueDepth",
                "concurrency",
            }
            | {"redisType", "redisDB", "redisMaxRetries", "redisMinRetryInterval", "redisMaxRetryInterval"}
            | {"dialTimeout", "readTimeout", "writeTimeout", "poolSize", "poolTimeout", "maxConnAge"}
            | {"minIdleConns", "idleCheckFrequency", "idleTimeout", "failover", "sentinelMasterName"}
            | {"sentinelUsername", "sentinelPassword", "maxLenApprox", "streamTTL"}
        ),
        frozenset({"redisHost"}),
    ),
    ("pubsub.kafka", "v1"): (
        frozenset(
            _PUBSUB_BUILTIN
            | {"brokers", "consumerGroup", "clientID", "initialOffset", "maxMessageBytes", "authType"}
            | {"saslUsername", "saslPassword", "saslMechanism", "caCert", "clientCert", "clientKey"}
            | {
                "consumeRetryInterval",
                "consumeRetryEnabled",
                "heartbeatInterval",
                "sessionTimeout",
                "version",
            }
            | {"skipVerify", "disableTls", "channelBufferSize", "consumerFetchMin", "consumerFetchDefault"}
            | {"dialTimeout", "readTimeout", "writeTimeout", "metadataTimeout", "producerRequiredAcks"}
            | {"producerRetryMax", "compression", "consumerGroupRebalanceStrategy", "escapeHeaders"}
        ),
        frozenset({"brokers", "authType"}),
    ),
    ("secretstores.local.env", "v1"): (frozenset({"prefix"}), frozenset()),
    ("secretstores.local.file", "v1"): (
        frozenset({"secretsFile", "nestedSeparator", "multiValued"}),
        frozenset({"secretsFile"}),
    ),
    ("secretstores.kubernetes", "v1"): (frozenset({"defaultNamespace", "kubeconfigPath"}), frozenset()),
}

# Metadata values that daprd or the component parses as durations or booleans.
DURATIONS = {
    "timeout", "busyTimeout", "cleanupInterval", "connectionMaxIdleTime", "redeliverInterval",
    "processingTimeout", "dialTimeout", "readTimeout", "writeTimeout", "heartbeatInterval", "sessionTimeout",
}  # fmt: skip
BOOLEANS = {
    "actorStateStore",
    "enableTLS",
    "disableWAL",
    "failover",
    "skipVerify",
    "disableTls",
    "multiValued",
}
ALLOWED_VALUES = {
    "authType": {"none", "password", "oidc", "oidc_private_key_jwt", "mtls", "awsiam"},
    "saslMechanism": {"SHA-512", "SHA-256", "PLAINTEXT"},
    "initialOffset": {"oldest", "newest"},
    "redisType": {"node", "cluster"},
    "direction": {"input", "output", "input, output", "output, input"},
}
