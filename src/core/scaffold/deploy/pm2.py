"""`core deploy pm2`: ecosystem.config.js, the same processes under PM2 on one machine."""

from __future__ import annotations

import json

from core.scaffold.deploy.plan import HTTP_PORT, DeployPlan, Process

ECOSYSTEM = "ecosystem.config.js"


def pm2_files(plan: DeployPlan) -> dict[str, str]:
    """The file to write (relative path -> text)."""
    return {ECOSYSTEM: ecosystem(plan)}


def ecosystem(plan: DeployPlan) -> str:
    """The PM2 ecosystem file; `core` is resolved when PM2 reads it (see CORE_BIN)."""
    apps = ",\n".join(f"    {_app(process)}" for process in plan.processes)
    store = json.dumps(plan.settings.auth_token_store)
    return f"""\
// Written by `core deploy pm2`. Edit freely: running it again leaves an edited file alone
// (`core deploy pm2 --force` writes it again).
//
//   core migrate                       # first, and after each release
//   pm2 start {ECOSYSTEM}
//   pm2 scale worker 4                 # more task workers (when there is a worker)
//
// Settings come from .env in this directory, as for `core run`. HOST and PORT (default
// 127.0.0.1:{HTTP_PORT}, for a reverse proxy in front) move the API.
const fs = require("fs");
const path = require("path");

// The `core` of the project's .venv; set CORE_BIN to use another (e.g. a pipx install).
const venvCore = path.join(__dirname, ".venv", "bin", "core");
const core = process.env.CORE_BIN || (fs.existsSync(venvCore) ? venvCore : "core");
const host = process.env.HOST || "127.0.0.1";
const port = process.env.PORT || "{HTTP_PORT}";

function app(name, args, options = {{}}) {{
  return {{
    name,
    namespace: {json.dumps(plan.name)},
    script: core,
    args,
    interpreter: "none",
    cwd: __dirname,
    // Production refuses session state kept in one process (AUTH_TOKEN_STORE=memory).
    env: {{
      ENVIRONMENT: process.env.ENVIRONMENT || "production",
      AUTH_TOKEN_STORE: process.env.AUTH_TOKEN_STORE || {store},
    }},
    autorestart: true,
    min_uptime: "10s",
    max_restarts: 10,
    ...options,
  }};
}}

module.exports = {{
  apps: [
{apps},
  ],
}};
"""


def _app(process: Process) -> str:
    if process.serves_http:
        args = '["run", "--host", host, "--port", port]'
    else:
        args = json.dumps(list(process.args))
    # kill_timeout: how long PM2 waits after SIGINT before SIGKILL (graceful stop).
    options = f"{{ kill_timeout: {process.stop_seconds * 1000} }}"
    return f"app({json.dumps(process.name)}, {args}, {options})"
