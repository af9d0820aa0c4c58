"""KV node configuration, read from the environment in one place."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ConfigError, env_float, env_int, env_list, env_str, load_dotenv

MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 1024 * 1024
# A node that forgot restarts its own entry this far past the highest one any peer has seen:
# entries it acknowledged but never sent before losing its disk are lost with the disk, but
# never handed out again (see docs/kv.md, "A node that forgets").
RECOVERY_SKIP = 1_000_000


@dataclass(frozen=True)
class NodeConfig:
    node_id: int
    node_urls: tuple[str, ...]
    redis_url: str
    cluster_token: str
    admin_token: str
    context_wait_s: float = 2.0
    context_waiters: int = 4
    replication_batch: int = 500
    replication_batch_bytes: int = 4 * 1024 * 1024
    replication_timeout_s: float = 2.0
    backoff_max_s: float = 2.0
    log_max: int = 10_000
    outbox_max: int = 100_000
    buffer_max: int = 100_000
    anti_entropy_s: float = 30.0
    digest_rebuild_s: float = 3600.0
    recovery_wait_s: float = 10.0
    sync_timeout_s: float = 30.0
    start_senders: bool = True

    @property
    def n(self) -> int:
        return len(self.node_urls)

    @property
    def peers(self) -> list[int]:
        return [i for i in range(self.n) if i != self.node_id]

    @classmethod
    def from_env(cls) -> NodeConfig:
        load_dotenv()
        urls = tuple(u.rstrip("/") for u in env_list("NODE_URLS"))
        if not urls:
            raise ConfigError("NODE_URLS must list every node's base URL, ordered by NODE_ID")
        node_id = env_int("NODE_ID", 0)
        if node_id >= len(urls):
            raise ConfigError(f"NODE_ID={node_id} but NODE_URLS has {len(urls)} entries")
        return cls(
            node_id=node_id,
            node_urls=urls,
            redis_url=env_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
            cluster_token=env_str("CLUSTER_TOKEN"),
            admin_token=env_str("ADMIN_TOKEN"),
            context_wait_s=env_float("CONTEXT_WAIT_S", 2.0),
            context_waiters=env_int("CONTEXT_WAITERS", 4, minimum=1),
            replication_batch=env_int("REPLICATION_BATCH", 500, minimum=1),
            replication_timeout_s=env_float("REPLICATION_TIMEOUT_S", 2.0, minimum=0.05),
            backoff_max_s=env_float("REPLICATION_BACKOFF_MAX_S", 2.0, minimum=0.05),
            log_max=env_int("EVENT_LOG_MAX", 10_000, minimum=10_000),
            outbox_max=env_int("OUTBOX_MAX", 100_000, minimum=1),
            buffer_max=env_int("BUFFER_MAX", 100_000, minimum=1),
            anti_entropy_s=env_float("ANTI_ENTROPY_S", 30.0, minimum=0.1),
            digest_rebuild_s=env_float("DIGEST_REBUILD_S", 3600.0),
            recovery_wait_s=env_float("RECOVERY_WAIT_S", 10.0),
            sync_timeout_s=env_float("SYNC_TIMEOUT_S", 30.0, minimum=0.5),
        )
