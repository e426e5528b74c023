"""`python -m examples.demo`: serve the demo API and print where it is."""

from __future__ import annotations

import argparse

import uvicorn

from examples.demo.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Core Framework demo API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    app = create_app()
    base = f"http://{args.host}:{args.port}"
    print(
        f"Core Framework demo: {base}{app.settings.api_prefix}/posts/  (docs: {base}/docs)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
