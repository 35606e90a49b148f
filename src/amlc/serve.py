"""Serve a model folder over the OpenAI chat-completions protocol with ms-swift, for the `api` engine.

    python -m amlc.serve --model outputs/run/merged --port 8000          # then: inference/run.py --engine api
    python -m amlc.serve --model outputs/run/quantized --backend vllm --data-parallel 4
    python -m amlc.serve --model M --print                               # only print the command

It runs `swift deploy` (ms-swift 4.6) with what a bare `swift deploy` would get wrong for this project's
models: the MAX_PIXELS the model was trained with (its amlc.json, as the vlm engine reads it), the
qwen2_vl model and template types a local folder needs, the CPU plugin (amlc/swift_plugin.py: no
torchvision needed, fast log-probabilities), log-probabilities allowed, no hub access for a local folder,
and a port that is checked free first (swift deploy silently moves to the next free one). Arguments
after `--` go to swift deploy as they are (`-- --vllm_max_model_len 4096`). When the server is up it
prints one line on stdout: `serving NAME at http://HOST:PORT/v1`; its own log goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from amlc.errors import ArgumentParser, InputError

READY = re.compile(r"Uvicorn running on (https?://[^\s]+)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None


def deploy_command(model: str, *, name: str, host: str, port: int, backend: str = "transformers",
                   max_pixels: int | None = None, max_batch_size: int = 16, data_parallel: int = 1,
                   extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """The `swift deploy` command line and environment that serve `model` as `name`."""
    import amlc
    from amlc import swift_plugin
    from amlc.finetune import read_model_card

    local = Path(model).is_dir()
    pixels = int(max_pixels or (read_model_card(model).get("max_pixels") if local else 0) or 313600)
    cmd = [sys.executable, "-m", "swift.cli.deploy", "--model", str(model), "--model_type", "qwen2_vl",
           "--template", "qwen2_vl", "--infer_backend", backend, "--served_model_name", name,
           "--host", host, "--port", str(port), "--external_plugins", swift_plugin.__file__,
           "--max_logprobs", "20", "--verbose", "false", "--log_interval", "-1"]
    if backend == "transformers":
        cmd += ["--max_batch_size", str(max_batch_size)]
    elif data_parallel > 1:
        cmd += ["--vllm_data_parallel_size", str(data_parallel)]
    if not local:
        cmd += ["--use_hf", "true"]
    src = str(Path(amlc.__file__).resolve().parents[1])  # the plugin imports amlc: this copy of it
    env = {**os.environ, "MAX_PIXELS": str(pixels), "IMAGE_MAX_TOKEN_NUM": str(max(4, pixels // (28 * 28))),
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}
    if local:
        env.update(HF_HUB_OFFLINE="1", MODELSCOPE_OFFLINE="1")
    return cmd + list(extra), env


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m amlc.serve", description=__doc__.splitlines()[0],
                                epilog="Arguments after -- go to swift deploy unchanged.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder (merged or quantized, from train/run.py) or hub id")
    p.add_argument("--name", help="the model name clients ask for (api.model); default: the folder's name")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; "
                                                        "then give swift deploy an --api_key after --)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                   help="transformers (CPU or GPU) or vllm (GPU, continuous batching)")
    p.add_argument("--data-parallel", type=int, default=1, metavar="N", help="vllm: replicas, one per GPU")
    p.add_argument("--max-batch-size", type=int, default=16, help="transformers: requests generated together")
    p.add_argument("--max-pixels", type=int, help="image size cap; default: the model's amlc.json, else 313600")
    p.add_argument("--print", action="store_true", help="print the command and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = build_parser().parse_args(argv[: len(argv) - len(extra) - (1 if "--" in argv else 0)])
    if not Path(args.model).is_dir() and (args.model.startswith((".", "/", "~")) or args.model.count("/") != 1):
        raise InputError(f"model folder not found: {args.model}")
    port = args.port or free_port(args.host)
    name = args.name or Path(args.model.rstrip("/")).name
    cmd, env = deploy_command(args.model, name=name, host=args.host, port=port, backend=args.backend,
                              max_pixels=args.max_pixels, max_batch_size=args.max_batch_size,
                              data_parallel=args.data_parallel, extra=extra)
    if args.print:
        print(f"MAX_PIXELS={env['MAX_PIXELS']} " + " ".join(cmd))
        return 0
    _check_port(args.host, port)
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for sig in (signal.SIGTERM, signal.SIGINT):  # a stop reaches the server, then we exit with it
        signal.signal(sig, lambda *_: child.terminate())

    def relay() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stderr.write(line)
            m = READY.search(line)
            if m:
                print(f"serving {name} at {m.group(1).rstrip('/')}/v1", flush=True)

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    code = child.wait()
    thread.join(timeout=5)
    return code


if __name__ == "__main__":
    from amlc.errors import cli

    sys.exit(cli(main))
