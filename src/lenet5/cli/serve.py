"""``lenet5 serve``: the drawing page and the JSON API for one or more checkpoints."""

from __future__ import annotations

import gc
import socket
import sys

from ..serve.limits import Limits


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="draw digits in the browser; a JSON API for predictions",
        description="Serve a page to draw a digit (or, with a reader, a whole number) on and "
                    "watch the model read it, and a JSON API (POST /api/predict, POST "
                    "/api/read, GET /api/models, /openapi.json). With several checkpoints of "
                    "a kind the page offers a model picker.")
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                   help=".safetensors checkpoints written by `lenet5 train` or names of shipped "
                        "weights: digit models, readers of whole numbers, or both (the first of "
                        "each kind is its default); none: every shipped model, each kind's best first")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; "
                        "0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads per forward pass (default: 1; requests run in parallel)")
    d = Limits()
    g = p.add_argument_group("limits", "what one client can cost (docs/serve.md)")
    g.add_argument("--max-connections", type=int, default=d.max_connections, metavar="N",
                   help=f"open connections at most; the next get a 503 (default: {d.max_connections})")
    g.add_argument("--header-timeout", type=float, default=d.header_timeout, metavar="S",
                   help="seconds for a request's line and headers to arrive, from the connection or "
                        f"its first byte; then a 408 (default: {d.header_timeout:g})")
    g.add_argument("--body-timeout", type=float, default=d.body_timeout, metavar="S",
                   help=f"seconds for a request's body to arrive after its headers; then a 408 "
                        f"(default: {d.body_timeout:g})")
    g.add_argument("--decode-workers", type=int, default=d.decode_workers, metavar="N",
                   help="uploaded images decoded at a time (default: one per core but one, "
                        f"here {d.decode_workers})")
    p.set_defaults(func=run)


def shipped_models() -> list[str]:
    """What ``lenet5 serve`` with no checkpoint serves: the shipped weights it can serve,
    each task's default first."""
    from ..weights import DEFAULTS, list_weights

    names = list_weights()
    first = [n for n in DEFAULTS.values() if n in names]
    return first + [n for n in names if n not in first]


def run(args) -> int:
    from ..errors import Lenet5Error
    from ..serve import create_app, require_serve_extra

    require_serve_extra()
    import torch
    import uvicorn

    for flag in ("max_connections", "decode_workers", "header_timeout", "body_timeout"):
        if not getattr(args, flag) > 0:
            raise Lenet5Error(f"--{flag.replace('_', '-')} must be positive, not {getattr(args, flag)}")
    limits = Limits(max_connections=args.max_connections, header_timeout=args.header_timeout,
                    body_timeout=args.body_timeout, decode_workers=args.decode_workers)
    torch.set_num_threads(max(1, args.threads))
    app = create_app(args.checkpoints or shipped_models(), limits)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # they are TCP, and with Nagle on, keep-alive responses wait 40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        sock.listen(2048)  # connections wait in the backlog from now on, even before uvicorn runs
    except OSError as e:
        sock.close()
        raise Lenet5Error(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from None
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(f"lenet5: serving {', '.join(app.state.models)} at http://{host}:{port}/ "
          "(Ctrl+C to stop)", file=sys.stderr, flush=True)
    from ..serve.protocol import guarded_protocol

    server = uvicorn.Server(uvicorn.Config(
        app, http=guarded_protocol(limits), ws="none", log_level="warning", access_log=False,
        timeout_keep_alive=limits.keep_alive, timeout_graceful_shutdown=limits.shutdown_timeout))
    # torch and friends leave ~200,000 objects behind; a full collection walks them all and
    # stalls every request in flight (over 100 ms on a busy machine). Frozen, it skips them.
    gc.collect()
    gc.freeze()
    server.run(sockets=[sock])
    return 0
