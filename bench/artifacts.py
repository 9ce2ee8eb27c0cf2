"""Benchmark: artifact bytes through the gateway against straight to S3 (``make bench``).

Starts the whole platform (``python -m interlock.devstack up``) in a temporary data
folder on the first free bench port offset, logs in, starts a run to attach artifacts
to, then, in the same run of the same stack:

- upload of ``--size-mb`` (default 100) MB: a multipart form through the gateway
  (Envoy, IAM's check, the artifact service hashing and streaming to S3), and the same
  bytes put straight into the bucket with the MinIO SDK (8 MiB parts, two in flight, as
  the service sends them);
- download of those bytes: through the gateway (``/content``: the service checks, then
  hands the download to S3 and the gateway follows), streamed by the service itself
  (``/content`` with ``Range: bytes=0-``, a range the service does not hand off: the
  path before the hand-off), straight from S3 with the MinIO SDK, with a pre-signed
  URL through the gateway (no credentials), and with the same URL through a plain
  Envoy TCP proxy to S3 (one worker, no HTTP, no filters: the floor of one proxy hop),
  side by side, three tries of each a round (best and median kept), with the CPU
  seconds per GB each process on the path spent (S3, the gateway, the service, the
  TCP proxy, the client): on a busy 2-core machine those say more than the rates;
  Every download is read with urllib3, the HTTP client the MinIO SDK itself uses,
  1 MiB at a time, so the three differ only in the path the bytes take: httpx (the
  other requests' client) reads 64 KiB at a time through a pure-Python parser and spent
  ~7 times urllib3's CPU on the same bytes, enough to make the client the bottleneck
  on a busy machine;
- the artifact service's resident memory (RSS, sampled every 50 ms) while a
  ``--large-mb`` (default 1024) MB upload passes through it: it streams, so it stays
  flat whatever the size.

The client, Envoy, the services and S3 share this machine's cores: figures are for
the whole system on one box, and indicative only when other work runs there. Results
go to stdout (Markdown) and ``bench/results/artifacts.json``.

Usage: ``python bench/artifacts.py [--size-mb 100] [--large-mb 1024] [--repeat 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx
import psutil
import urllib3
from minio import Minio

from bench.interlock_stack import PORT_OFFSETS
from interlock.devstack import envoy_binary, running_platform
from interlock.devstack._process import LOOPBACK, free_ports, port_is_free
from interlock.devstack._stack import S3_BUCKET, Stack, StackSecrets

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024
_BLOCK = os.urandom(MIB)
_WORKFLOW = "name: artifact-bench\ntasks:\n  - id: a\n    type: noop\n"
DOWNLOAD_TRIES = 3
"""Downloads of each kind per round: each takes well under a second, where one late
wake-up on a busy machine halves a figure, so the best of several is kept."""
_TCP_PROXY_CONFIG = """\
static_resources:
  listeners:
    - name: tcp
      address: {{ socket_address: {{ address: {loopback}, port_value: {port} }} }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.tcp_proxy
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                stat_prefix: tcp
                cluster: s3
  clusters:
    - name: s3
      type: STATIC
      connect_timeout: 2s
      load_assignment:
        cluster_name: s3
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address: {{ socket_address: {{ address: {s3_host}, port_value: {s3_port} }} }}
"""


@dataclass(frozen=True)
class Platform:
    """The running stack and an admin's token."""

    stack: Stack
    secrets: StackSecrets
    token: str

    def client(self) -> httpx.Client:
        """A client of the gateway, with the admin's token."""
        return httpx.Client(
            base_url=self.stack.gateway_url,
            headers={"authorization": f"Bearer {self.token}"},
            trust_env=False,
            timeout=600,
        )

    def s3(self) -> Minio:
        """A client of the stack's S3, with its keys."""
        return Minio(
            self.stack.s3_endpoint,
            access_key=self.secrets.s3_access_key,
            secret_key=self.secrets.s3_secret_key,
            secure=False,
        )


@contextlib.contextmanager
def _platform() -> Iterator[Platform]:
    with running_platform(PORT_OFFSETS) as running:
        yield Platform(running.stack, running.secrets, running.login())


@contextlib.contextmanager
def _tcp_proxy(s3_endpoint: str) -> Iterator[tuple[str, psutil.Process]]:
    """A plain Envoy TCP proxy to S3, one worker as the gateway has: its address and process."""
    s3_host, s3_port = s3_endpoint.rsplit(":", 1)
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory(prefix="interlock-bench-tcp-proxy-") as folder:
        config = Path(folder) / "tcp-proxy.yaml"
        config.write_text(
            _TCP_PROXY_CONFIG.format(loopback=LOOPBACK, port=port, s3_host=s3_host, s3_port=s3_port)
        )
        argv = [str(envoy_binary()), "--config-path", str(config), "--disable-hot-restart"]
        process = subprocess.Popen(
            [*argv, "--concurrency", "1", "--log-level", "warning"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while port_is_free(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the TCP proxy did not start")
                time.sleep(0.1)
            yield f"{LOOPBACK}:{port}", psutil.Process(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _blocks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        block = _BLOCK[: min(MIB, size - sent)]
        sent += len(block)
        yield block


class _Blocks:
    """A file-like view of :func:`_blocks` for the MinIO SDK."""

    def __init__(self, size: int) -> None:
        self._blocks = _blocks(size)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _multipart(run_id: str, name: str, size: int) -> tuple[str, Iterator[bytes]]:
    boundary = secrets.token_hex(16)
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
        for field, value in (("run_id", run_id), ("name", name))
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )

    def body() -> Iterator[bytes]:
        yield head.encode()
        yield from _blocks(size)
        yield f"\r\n--{boundary}--\r\n".encode()

    return f"multipart/form-data; boundary={boundary}", body()


def _start_run(platform: Platform) -> str:
    with platform.client() as client:
        client.post(
            "/api/v1/workflows", content=_WORKFLOW, headers={"content-type": "application/yaml"}
        )
        run_id: str = client.post("/api/v1/workflows/artifact-bench/runs", json={}).json()["run_id"]
        deadline = time.monotonic() + 120
        while True:  # the scheduler learns of the run from its event
            content_type, body = _multipart(run_id, "probe.bin", 1)
            answer = client.post(
                "/api/v1/artifacts", content=body, headers={"content-type": content_type}
            )
            if answer.status_code == 201:
                return run_id
            if time.monotonic() > deadline:
                raise RuntimeError(f"the run never became known: {answer.text}")
            time.sleep(0.5)


def _upload_gateway(platform: Platform, run_id: str, size: int, name: str) -> tuple[float, str]:
    content_type, body = _multipart(run_id, name, size)
    with platform.client() as client:
        began = time.perf_counter()
        answer = client.post(
            "/api/v1/artifacts", content=body, headers={"content-type": content_type}
        )
        elapsed = time.perf_counter() - began
    answer.raise_for_status()
    artifact_id: str = answer.json()["artifact_id"]
    return elapsed, artifact_id


def _upload_direct(platform: Platform, size: int, key: str) -> float:
    began = time.perf_counter()
    platform.s3().put_object(
        S3_BUCKET,
        key,
        cast(BinaryIO, _Blocks(size)),  # the SDK calls read() only
        size,
        part_size=8 * MIB,
        num_parallel_uploads=2,
    )
    return time.perf_counter() - began


def _fetch(url: str, headers: dict[str, str]) -> tuple[float, int]:
    """Seconds to read ``url`` to its end with urllib3 (as the MinIO SDK reads), and bytes."""
    with urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=600)) as pool:
        began = time.perf_counter()
        response = pool.request("GET", url, headers=headers, preload_content=False)
        try:
            if response.status != 200:
                raise RuntimeError(f"GET {url} answered {response.status}")
            size = sum(len(chunk) for chunk in response.stream(MIB))
        finally:
            response.release_conn()
        return time.perf_counter() - began, size


def _download_gateway(
    platform: Platform, artifact_id: str, *, streamed: bool = False
) -> tuple[float, int]:
    url = f"{platform.stack.gateway_url}/api/v1/artifacts/{artifact_id}/content"
    headers = {"authorization": f"Bearer {platform.token}"}
    if streamed:  # all the bytes, but a Range: the service streams it rather than hand it off
        headers["range"] = "bytes=0-"
    return _fetch(url, headers)


def _presigned_url(platform: Platform, artifact_id: str) -> str:
    with platform.client() as client:
        url: str = client.get(f"/api/v1/artifacts/{artifact_id}/url").json()["url"]
    return url


def _download_tcp_proxy(platform: Platform, url: str, proxy: str) -> tuple[float, int]:
    """The pre-signed ``url`` through the TCP proxy, with the Host it was signed for."""
    path = url.removeprefix(platform.stack.gateway_url)
    return _fetch(f"http://{proxy}{path}", {"host": platform.stack.s3_endpoint})


def _download_direct(platform: Platform, key: str) -> tuple[float, int]:
    began = time.perf_counter()
    response = platform.s3().get_object(S3_BUCKET, key)
    try:
        size = sum(len(chunk) for chunk in response.stream(MIB))
    finally:
        response.close()
        response.release_conn()
    return time.perf_counter() - began, size


def _downloads(
    platform: Platform, artifact_id: str, key: str, proxy: str
) -> dict[str, Callable[[], tuple[float, int]]]:
    """Each way of downloading the same bytes, by the name its figures go under.

    The pre-signed URL is asked for once, here: neither its time nor its CPU is the
    download's.
    """
    url = _presigned_url(platform, artifact_id)
    return {
        "download_gateway": lambda: _download_gateway(platform, artifact_id),
        "download_streamed": lambda: _download_gateway(platform, artifact_id, streamed=True),
        "download_direct": lambda: _download_direct(platform, key),
        "download_presigned": lambda: _fetch(url, {}),
        "download_tcp_proxy": lambda: _download_tcp_proxy(platform, url, proxy),
    }


def _listener(port: int) -> psutil.Process:
    for connection in psutil.net_connections(kind="tcp"):
        address = connection.laddr
        listening = connection.status == psutil.CONN_LISTEN and getattr(address, "port", 0) == port
        if listening and connection.pid is not None:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"no process listens on port {port}")


def _artifact_process(stack: Stack) -> psutil.Process:
    return _listener(stack.port_offset + 8107)


def _cpu_s(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds (user + system) each process has spent so far."""
    return {name: sum(process.cpu_times()[:2]) for name, process in processes.items()}


def _rss_during(process: psutil.Process, work: Any) -> tuple[float, float, Any]:
    """Resident memory before and at its peak while ``work()`` runs, in MB, and its result."""
    before = process.memory_info().rss / 1e6
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            with contextlib.suppress(psutil.Error):
                peak = max(peak, process.memory_info().rss / 1e6)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return before, peak, result


def _mb_per_s(size: int, seconds: float) -> float:
    return round(size / 1e6 / seconds, 1)


def measure(platform: Platform, *, size_mb: int, large_mb: int, repeat: int) -> dict[str, Any]:
    """Every figure of the benchmark; throughputs are the best of ``repeat`` rounds.

    Downloads: the best of ``repeat`` x :data:`DOWNLOAD_TRIES`, and their median (on a
    busy machine the best of a sub-second transfer is whichever path met a quiet spell).
    """
    size = size_mb * MIB
    run_id = _start_run(platform)
    tries: dict[str, list[float]] = {}
    cpu_s: dict[str, dict[str, float]] = {}

    def keep(name: str, seconds: float) -> None:
        tries.setdefault(name, []).append(seconds)

    with _tcp_proxy(platform.stack.s3_endpoint) as (proxy, proxy_process):
        processes = {
            "s3": _listener(platform.stack.port("s3")),
            "gateway": _listener(platform.stack.port("gateway")),
            "service": _artifact_process(platform.stack),
            "tcp_proxy": proxy_process,
            "client": psutil.Process(),
        }
        for round_ in range(repeat):
            seconds, artifact_id = _upload_gateway(platform, run_id, size, f"bench-{round_}.bin")
            keep("upload_gateway", seconds)
            key = f"bench-direct/{round_}"
            keep("upload_direct", _upload_direct(platform, size, key))
            downloads = _downloads(platform, artifact_id, key, proxy)
            for _ in range(DOWNLOAD_TRIES):  # interleaved: a busy spell hits all alike
                for name, download in downloads.items():
                    cpu_before = _cpu_s(processes)
                    seconds, received = download()
                    cpu_after = _cpu_s(processes)
                    assert received == size, (name, received, size)
                    keep(name, seconds)
                    spent = cpu_s.setdefault(name, {})
                    for label in processes:
                        spent[label] = spent.get(label, 0.0) + cpu_after[label] - cpu_before[label]
    rates = {name: _mb_per_s(size, min(seconds)) for name, seconds in tries.items()}
    gigabytes = size / 1e9 * repeat * DOWNLOAD_TRIES
    cpu_s_per_gb = {
        name: {label: round(cpu / gigabytes, 2) for label, cpu in spent.items()}
        for name, spent in cpu_s.items()
    }
    medians = {
        name: _mb_per_s(size, statistics.median(seconds))
        for name, seconds in tries.items()
        if name.startswith("download")
    }
    process = _artifact_process(platform.stack)
    before, peak, (seconds, _) = _rss_during(
        process, lambda: _upload_gateway(platform, run_id, large_mb * MIB, "large.bin")
    )
    return {
        "size_mb": size_mb,
        "mb_per_s": rates,
        "gateway_upload_vs_direct": round(rates["upload_gateway"] / rates["upload_direct"], 2),
        "gateway_download_vs_direct": round(
            rates["download_gateway"] / rates["download_direct"], 2
        ),
        "presigned_download_vs_direct": round(
            rates["download_presigned"] / rates["download_direct"], 2
        ),
        "download_median_mb_per_s": medians,
        "gateway_download_vs_direct_median": round(
            medians["download_gateway"] / medians["download_direct"], 2
        ),
        "presigned_download_vs_direct_median": round(
            medians["download_presigned"] / medians["download_direct"], 2
        ),
        "tcp_proxy_download_vs_direct_median": round(
            medians["download_tcp_proxy"] / medians["download_direct"], 2
        ),
        "download_cpu_s_per_gb": cpu_s_per_gb,
        "large_upload": {
            "size_mb": large_mb,
            "mb_per_s": _mb_per_s(large_mb * MIB, seconds),
            "artifact_rss_mb_before": round(before, 1),
            "artifact_rss_mb_peak": round(peak, 1),
        },
    }


def _cpu_table(cpu_s_per_gb: dict[str, dict[str, float]]) -> list[str]:
    processes = list(next(iter(cpu_s_per_gb.values())))
    lines = [
        f"| CPU s per GB downloaded | {' | '.join(processes)} | total |",
        "|---" * (len(processes) + 2) + "|",
    ]
    for name, spent in cpu_s_per_gb.items():
        cells = " | ".join(str(spent[process]) for process in processes)
        lines.append(f"| {name.removeprefix('download_')} | {cells} | {sum(spent.values()):.2f} |")
    return lines


def _report(result: dict[str, Any]) -> str:
    rates = result["mb_per_s"]
    medians = result["download_median_mb_per_s"]
    large = result["large_upload"]
    size = result["size_mb"]
    return "\n".join(
        [
            f"| {size} MB (MB/s, best of the tries) | gateway | direct S3 | gateway / direct |",
            "|---|---|---|---|",
            f"| upload | {rates['upload_gateway']} | {rates['upload_direct']} | "
            f"{result['gateway_upload_vs_direct']} |",
            f"| download | {rates['download_gateway']} | {rates['download_direct']} | "
            f"{result['gateway_download_vs_direct']} |",
            f"| pre-signed download (gateway, no credentials) | {rates['download_presigned']} | "
            f"{rates['download_direct']} | {result['presigned_download_vs_direct']} |",
            f"| download, median of the tries | {medians['download_gateway']} | "
            f"{medians['download_direct']} | {result['gateway_download_vs_direct_median']} |",
            f"| pre-signed download, median | {medians['download_presigned']} | "
            f"{medians['download_direct']} | {result['presigned_download_vs_direct_median']} |",
            f"| download streamed by the service (no hand-off), median | "
            f"{medians['download_streamed']} | {medians['download_direct']} | "
            f"{round(medians['download_streamed'] / medians['download_direct'], 2)} |",
            f"| pre-signed through a plain Envoy TCP proxy, median | "
            f"{medians['download_tcp_proxy']} | {medians['download_direct']} | "
            f"{result['tcp_proxy_download_vs_direct_median']} |",
            "",
            *_cpu_table(result["download_cpu_s_per_gb"]),
            "",
            f"Artifact service RSS while {large['size_mb']} MB upload passed "
            f"({large['mb_per_s']} MB/s): {large['artifact_rss_mb_before']} MB before, "
            f"{large['artifact_rss_mb_peak']} MB at its peak.",
        ]
    )


def main() -> None:
    """Start the stack, measure, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100, help="transfer size (default 100)")
    parser.add_argument(
        "--large-mb", type=int, default=1024, help="upload watched for memory (default 1024)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds, best kept (default 2)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with _platform() as platform:
        result = measure(platform, size_mb=args.size_mb, large_mb=args.large_mb, repeat=args.repeat)
    result["load_average_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    result["cpus"] = os.cpu_count()
    sys.stdout.write(
        _report(result) + f"\nLoad average (1 min) before / after: {load_before:.2f} / "
        f"{result['load_average_1m']['after']:.2f} on {os.cpu_count()} CPUs.\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "artifacts.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
