"""Load and validate sigwarden's YAML configuration into frozen dataclasses.

Every error names the file and the dotted field it is about, so a user can fix it without reading code.
File references (keys, certificates, trust policies) are resolved relative to the file that names them and
are read once, at load time, so a config that loads is a config whose trust material parses.

`model` holds the dataclasses, `reader` the YAML and file reading (with `SCHEMA`, every accepted key),
`authorities` the trust material of each kind, `loader` the rest and the entry points.
"""

from provider.config.loader import build_config, load_config
from provider.config.model import (
    AttestationAuthority,
    AttestationKey,
    Authority,
    CacheConfig,
    CloudAuth,
    Config,
    ConfigError,
    CosignAuthority,
    Credentials,
    Identity,
    KeylessConfig,
    MutationConfig,
    NotationAuthority,
    PKIConfig,
    PublicKey,
    RedisConfig,
    RegistryAuth,
    SecretRef,
    ServerConfig,
    SignedIdentity,
    StoreConfig,
    TLSConfig,
    VerificationConfig,
    parse_duration,
    pattern_matches,
)
from provider.config.reader import SCHEMA, accepted_keys

__all__ = [
    "SCHEMA", "AttestationAuthority", "AttestationKey", "Authority", "CacheConfig", "CloudAuth", "Config",
    "ConfigError", "CosignAuthority", "Credentials", "Identity", "KeylessConfig", "MutationConfig", "NotationAuthority",
    "PKIConfig", "PublicKey", "RedisConfig", "RegistryAuth", "SecretRef", "ServerConfig", "SignedIdentity",
    "StoreConfig", "TLSConfig", "VerificationConfig",
    "accepted_keys", "build_config", "load_config", "parse_duration", "pattern_matches",
]
