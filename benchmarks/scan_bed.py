"""The scan against the right baselines, as whole processes, on nginx (`make bench-scan`).

The bed: N certificates (RSA 2048 and ECDSA P-256 leaves, expiries spread over
a year, some already expired), each on its own SNI virtual host of one nginx
from the distribution's packages, listening on a few loopback ports, every
tenth target over IPv6 (`[::1]`) where the machine has it. Keys come from a
small pool: generating 10,000 RSA keys would take longer than the benchmark,
and a handshake costs the same whichever key signs it.

Measured in the same run, interleaved, `--repeat` times each, medians:

- `certrenew scan --json` over the whole inventory, as a whole process;
- `benchmarks.minimal_client`, the least a TLS expiry check can do, at the
  same concurrency, as a whole process;
- where it is installed, Prometheus's blackbox_exporter probing the same
  targets at the same concurrency (`benchmarks.blackbox`: its CPU and peak
  RSS are the exporter's own);
- the time `certrenew.inventory.load_inventory` takes on the same inventory.

Each command runs under GNU `time -v`: wall time, user + system CPU and peak
RSS come from there. The report gives targets/s, the scan's ratio to the
minimal client, CPU ms per target, peak RSS, and the share of the scan spent
loading the inventory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from benchmarks import blackbox
from certrenew.lab.packages import ensure_installed
from certrenew.lab.tls import LocalCA

PORTS = 8
KEY_POOL = 8
ROOT = Path(__file__).resolve().parent.parent


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class Bed:
    """N virtual hosts served by one nginx; the inventory and target list that name them."""

    folder: Path
    count: int
    inventory: Path
    targets: Path
    config: Path
    nginx: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.nginx.terminate()
        self.nginx.wait(timeout=30)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def build_bed(folder: Path, count: int) -> Bed:
    """Write the certificates, nginx's configuration and the inventory; start nginx."""
    nginx = ensure_installed(
        lambda: shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin"),
        "nginx-light",
    )
    ca = LocalCA("certrenew scan bench CA")
    pool: list[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = [
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)
    ]
    pool += [ec.generate_private_key(ec.SECP256R1()) for _ in range(KEY_POOL - 2)]
    key_files = []
    for index, key in enumerate(pool):
        path = folder / f"key-{index}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_files.append(path)
    now = datetime.now(UTC)
    ports = free_ports(PORTS)
    v6 = ipv6_loopback()
    servers, inventory, targets = [], ["certificates:"], []
    for i in range(count):
        name = f"h{i}.bench.test"
        key_index = i % KEY_POOL
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.certificate.subject)
            .public_key(pool[key_index].public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400))
            .not_valid_after(now + timedelta(days=(i * 37) % 400 - 30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca.key, hashes.SHA256())
        )
        cert_file = folder / f"{name}.crt"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        port = ports[i % PORTS]
        host = "::1" if v6 and i % 10 == 9 else "127.0.0.1"
        listen = f"[{host}]" if ":" in host else host
        servers.append(
            f"server {{ listen {listen}:{port} ssl; server_name {name}; "
            f"ssl_certificate {cert_file}; ssl_certificate_key {key_files[key_index]}; }}"
        )
        inventory.append(
            f"  - name: bench-{i}\n    domain: {name}\n    endpoints: ['{listen}:{port}']"
        )
        targets.append(f"{host} {port} {name}")
    conf = folder / "nginx.conf"
    conf.write_text(
        "worker_processes 1;\ndaemon off;\nerror_log stderr error;\n"
        f"pid {folder}/nginx.pid;\n"
        "events { worker_connections 4096; }\n"
        "http {\n  access_log off;\n  server_names_hash_max_size 65536;\n"
        "  server_names_hash_bucket_size 128;\n"
        f"  client_body_temp_path {folder}/tmp;\n  proxy_temp_path {folder}/tmp;\n"
        f"  fastcgi_temp_path {folder}/tmp;\n  uwsgi_temp_path {folder}/tmp;\n"
        f"  scgi_temp_path {folder}/tmp;\n" + "\n".join(f"  {s}" for s in servers) + "\n}\n"
    )
    (folder / "inventory.yaml").write_text("\n".join(inventory) + "\n")
    (folder / "targets.txt").write_text("\n".join(targets) + "\n")
    (folder / "certrenew.toml").write_text(
        f'inventory = "{folder / "inventory.yaml"}"\ndata_dir = "{folder / "data"}"\n'
    )
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(folder)])
    try:
        wait_for_ports(ports, process)
    except BaseException:  # giving up (or interrupted) must not leave nginx running
        process.terminate()
        process.wait(timeout=30)
        raise
    return Bed(
        folder,
        count,
        folder / "inventory.yaml",
        folder / "targets.txt",
        folder / "certrenew.toml",
        process,
    )


def wait_for_ports(ports: list[int], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    for port in ports:
        while True:
            if process.poll() is not None:
                sys.exit(f"nginx stopped with exit code {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"nginx did not listen on {port} within 120 s")
                time.sleep(0.2)


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_rss_mib: float


def timed_processes(commands: list[list[str]], env: dict[str, str]) -> Run:
    """Run `commands` side by side, each under GNU time -v.

    Wall time from the first start to the last end, user + system CPU summed,
    the largest peak RSS: one command is one whole process; several are the
    parts of a sharded scan.
    """
    with tempfile.TemporaryDirectory() as folder:
        reports = [Path(folder) / f"{index}.time" for index in range(len(commands))]
        start = time.perf_counter()
        running = [
            subprocess.Popen(
                ["/usr/bin/time", "-v", "-o", str(report), *command],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for report, command in zip(reports, commands, strict=True)
        ]
        for process, command in zip(running, commands, strict=True):
            _, err = process.communicate()
            # The scan's monitoring exit codes are fine (every target was checked before).
            if process.returncode not in (0, 1, 2):
                sys.exit(f"{command[:3]} failed ({process.returncode}): {err.decode()[-500:]}")
        wall = time.perf_counter() - start
        fields = [
            dict(
                line.strip().rsplit(": ", 1) for line in r.read_text().splitlines() if ": " in line
            )
            for r in reports
        ]
    return Run(
        wall=wall,
        cpu=sum(
            float(f["User time (seconds)"]) + float(f["System time (seconds)"]) for f in fields
        ),
        peak_rss_mib=max(int(f["Maximum resident set size (kbytes)"]) for f in fields) / 1024,
    )


def check_both_read_everything(
    commands: dict[str, list[str]], env: dict[str, str], count: int
) -> None:
    """Before timing: both commands read every target (a failing command is fast, not good)."""
    scan, client = commands.values()
    out = subprocess.run(scan, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        statuses = Counter(result["status"] for result in json.loads(out.stdout))
    except ValueError:
        sys.exit(f"the scan printed no JSON: {out.stderr[-500:]}")
    if sum(statuses.values()) != count or statuses["error"]:
        sys.exit(f"the scan did not read every target: {dict(statuses)}")
    out = subprocess.run(client, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.stdout.strip() != f"{count} read, 0 failed":
        sys.exit(f"the minimal client did not read every target: {out.stdout} {out.stderr[-300:]}")
    print(f"  both read all {count} targets: {dict(statuses)}")


def load_time(inventory: Path, env: dict[str, str]) -> float:
    """Seconds `load_inventory` takes, measured inside a fresh process (imports excluded)."""
    code = (
        "import time, pathlib; from certrenew.inventory import load_inventory; "
        f"t = time.perf_counter(); load_inventory(pathlib.Path({str(inventory)!r})); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


SCAN = "certrenew scan --json"
CLIENT = "minimal asyncio+ssl client"


def uptime() -> str:
    """The load average over 1, 5 and 15 minutes, as `uptime` prints it."""
    return ", ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scan_bed", description=__doc__)
    parser.add_argument("--targets", type=int, nargs="+", default=[2000, 10_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--shards",
        type=int,
        default=2,
        help="also time the scan split in this many parts, run side by side (0: not measured)",
    )
    args = parser.parse_args(argv)
    certrenew = str(Path(sys.executable).with_name("certrenew"))
    print(
        f"machine: {os.cpu_count()} cores, {os.uname().release}; load average {uptime()}; "
        f"{args.repeat} runs each, interleaved, medians"
    )
    exporter = blackbox.installed()
    if exporter is None:
        print(f"({blackbox.LABEL} is not installed: measured against the minimal client only)")
    for count in args.targets:
        with tempfile.TemporaryDirectory(prefix="certrenew-bench-") as tmp:
            bed = build_bed(Path(tmp), count)
            modules = blackbox.write_config(bed.targets, Path(tmp)) if exporter else None
            try:
                for concurrency in args.concurrency:
                    env = dict(os.environ, CERTRENEW_SCAN__CONCURRENCY=str(concurrency))
                    scan = [certrenew, "scan", "--config", str(bed.config), "--json"]
                    commands = {
                        SCAN: [scan],
                        CLIENT: [[
                            sys.executable, "-m", "benchmarks.minimal_client", str(bed.targets),
                            "--concurrency", str(concurrency),
                        ]],
                    }  # fmt: skip
                    if args.shards > 1:
                        commands[f"{SCAN}, {args.shards} parts side by side"] = [
                            [*scan, "--shard", f"{index}/{args.shards}"]
                            for index in range(1, args.shards + 1)
                        ]
                    check_both_read_everything(
                        {SCAN: commands[SCAN][0], CLIENT: commands[CLIENT][0]}, env, count
                    )
                    runs: dict[str, list[Run]] = {label: [] for label in commands}
                    loads = []
                    for _ in range(args.repeat):
                        for label, parts in commands.items():
                            runs[label].append(timed_processes(parts, env))
                        if exporter and modules:
                            port = free_ports(1)[0]
                            found = blackbox.probe_all(
                                exporter, modules, bed.targets, port, concurrency
                            )
                            runs.setdefault(blackbox.LABEL, []).append(Run(*found))
                        loads.append(load_time(bed.inventory, env))
                    report(count, concurrency, runs, statistics.median(loads))
            finally:
                bed.stop()
    print(f"\nload average at the end {uptime()}")


def report(count: int, concurrency: int, runs: dict[str, list[Run]], load: float) -> None:
    medians = {
        label: Run(
            statistics.median(r.wall for r in found),
            statistics.median(r.cpu for r in found),
            statistics.median(r.peak_rss_mib for r in found),
        )
        for label, found in runs.items()
    }
    baseline = medians[CLIENT]
    print(f"\n{count} targets, concurrency {concurrency} (load average {uptime()})")
    print(f"  {'':<42} {'targets/s':>10} {'ratio':>7} {'CPU ms/target':>14} {'peak RSS MiB':>13}")
    for label, run in medians.items():
        print(
            f"  {label:<42} {count / run.wall:10.0f} {baseline.wall / run.wall:7.2f} "
            f"{run.cpu * 1000 / count:14.2f} {run.peak_rss_mib:13.1f}"
        )
    scan = medians[SCAN]
    print(f"  loading the inventory: {load:.2f} s ({100 * load / scan.wall:.1f}% of the scan)")


if __name__ == "__main__":
    main()
