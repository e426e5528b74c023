"""`core deploy pm2`: ecosystem.config.js, the same processes under PM2 on one machine."""

from __future__ import annotations

import json
import secrets

from sqlalchemy.engine import make_url

from core.scaffold.deploy.plan import HTTP_PORT, DeployPlan, Process

ECOSYSTEM = "ecosystem.config.js"
# Production settings over .env: what `core deploy` promoted. Written once, git-ignored.
ENV_FILE = ".env.pm2"


def pm2_files(plan: DeployPlan) -> dict[str, str]:
    """The file to write (relative path -> text)."""
    return {ECOSYSTEM: ecosystem(plan)}


def env_file(plan: DeployPlan) -> dict[str, str]:
    """ENV_FILE's variables: the settings promotion changed, with a random database password."""
    settings = plan.settings
    variables: dict[str, str] = {}
    for label, _, _ in plan.promoted:
        if label == "DATABASE_URL":
            url = make_url(settings.database_url).set(password=secrets.token_hex(24))
            variables[label] = url.render_as_string(hide_password=False)
        else:
            variables[label] = getattr(settings, label.lower())
    if any(label != "DATABASE_URL" for label, _, _ in plan.promoted):
        variables["REDIS_URL"] = settings.redis_url
    return variables


def env_file_text(variables: dict[str, str]) -> str:
    header = (
        "# Written once by `core deploy pm2`: production settings over .env (the processes\n"
        "# of ecosystem.config.js get them as environment variables). Keep it out of git.\n"
    )
    if "DATABASE_URL" in variables:
        url = make_url(variables["DATABASE_URL"])
        header += (
            f"# The database, once: CREATE ROLE {url.username} LOGIN PASSWORD "
            f"'{url.password}'; CREATE DATABASE {url.database} OWNER {url.username};\n"
        )
    return header + "".join(f"{name}={value}\n" for name, value in variables.items())


def ecosystem(plan: DeployPlan) -> str:
    """The PM2 ecosystem file; `core` is resolved when PM2 reads it (see CORE_BIN)."""
    apps = ",\n".join(f"    {_app(process)}" for process in plan.processes)
    return f"""\
// Written by `core deploy pm2`. Edit freely: running it again leaves an edited file alone
// (`core deploy pm2 --force` writes it again).
//
//   core migrate                       # first, and after each release
//   pm2 start {ECOSYSTEM}
//   pm2 scale worker 4                 # more task workers (when there is a worker)
//
// Settings come from .env in this directory, as for `core run`, and {ENV_FILE} (written
// once by `core deploy pm2`) over it. HOST and PORT (default 127.0.0.1:{HTTP_PORT}, for a
// reverse proxy in front) move the API.
const fs = require("fs");
const path = require("path");

// NAME=value lines; `#` starts a comment line.
function readEnv(file) {{
  const values = {{}};
  if (!fs.existsSync(file)) return values;
  for (const line of fs.readFileSync(file, "utf8").split(/\\r?\\n/)) {{
    const match = line.match(/^\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*=(.*)$/);
    if (match) values[match[1]] = match[2].trim();
  }}
  return values;
}}
const production = readEnv(path.join(__dirname, {json.dumps(ENV_FILE)}));

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
    env: {{ ...production, ENVIRONMENT: process.env.ENVIRONMENT || "production" }},
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
