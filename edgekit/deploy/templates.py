"""The text of a Raspberry Pi bundle's files (installer, entry points, systemd units, README), filled in by
`edgekit.deploy.rpi` with `str.format`."""

INSTALL_SH = """#!/usr/bin/env bash
# Creates .venv beside this script. --system-site-packages keeps the system picamera2 (apt) visible.
set -euo pipefail
cd "$(dirname "$0")"
if ! sha256sum --check --quiet {manifest}; then
    echo "install.sh: the bundle is damaged (files above FAILED their SHA-256 check): copy it again" >&2
    exit 1
fi
{serve_token}python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install --upgrade pip
.venv/bin/python -m pip install -r requirements.txt
.venv/bin/python doctor.py || true
echo "installed: try  .venv/bin/python run.py --source picamera2  (or --source 0 for a USB camera)"
"""

RUN_PY = """#!/usr/bin/env python3
\"\"\"Run the bundled {role} on frames; one JSON object per result. --help lists the options.\"\"\"
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runtimes.apps.runner import main  # noqa: E402

sys.exit(main(default_model=str(HERE / {model!r}), bundle=HERE))  # verifies {manifest} first
"""

DOCTOR_PY = """#!/usr/bin/env python3
\"\"\"Report what this machine can run and what to install.\"\"\"
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runtimes.apps.doctor import main  # noqa: E402

sys.exit(main())
"""

SERVE_TOKEN = """# The serve unit's token, made here (no secret travels in the bundle), before anything is installed:
# a token that cannot be made stops the install, so the unit never starts without one. It is written, never printed.
if ! grep -Eqs '^EDGEKIT_SERVE_TOKEN=[A-Za-z0-9_-]{{32,}}$' serve.env; then
    if ! token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" || [ "${{#token}}" -lt 32 ]; then
        echo "install.sh: could not make the serve token (python3 -c 'import secrets' failed); nothing installed" >&2
        exit 1
    fi
    rm -f serve.env.new
    (umask 077; printf 'EDGEKIT_SERVE_TOKEN=%s\\n' "$token" > serve.env.new)
    mv serve.env.new serve.env
    unset token
fi
echo "edgekit serve: its token is in $PWD/serve.env (readable by you only);" \\
    "a browser opens http://<pi>:{port}/?token=<token> once"
"""

SERVE_PY = """#!/usr/bin/env python3
\"\"\"Serve the bundled {role}: TF Serving's REST API and a live view. --help lists the options.\"\"\"
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runtimes.serving.cli import main  # noqa: E402

sys.exit(main(default_model=str(HERE / {model!r}), bundle=HERE))  # verifies {manifest} first
"""

SERVE_SERVICE = """[Unit]
Description=edgekit serve: {role} REST API and live view ({name})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
# Its own user (bundle README: useradd), which may use the camera and nothing of yours; the code root-owned in /opt.
User=edgekit
Group=edgekit
SupplementaryGroups=video
WorkingDirectory={folder}
# read by systemd as root: the token stays out of `ps`, the command line and the logs; no file, no start
EnvironmentFile={folder}/serve.env
# the source, threshold, tracking and counting line come from {folder}/config.json
ExecStart={folder}/.venv/bin/python {folder}/serve.py --host 0.0.0.0 --port {port}
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=2
TimeoutStopSec=20
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictNamespaces=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
MemoryHigh=60%
MemoryMax=75%
LimitNOFILE=1024
TasksMax=128

[Install]
WantedBy=multi-user.target
"""

SERVE_README = """
## Serve (REST API and live view)

    .venv/bin/python serve.py --source picamera2                                   # this Pi only (127.0.0.1)
    .venv/bin/python serve.py --source picamera2 --host 0.0.0.0 --port {port} --token-file token.txt

Off loopback a token is required (`--token-file`, or `EDGEKIT_SERVE_TOKEN`; serve refuses to start without
one unless told `--insecure`). Open `http://<pi>:{port}/?token=<token>` once in a browser for the annotated
stream (the page swaps the token for a cookie); other programs POST
`http://<pi>:{port}/v1/models/{model_name}:predict` as they would to TensorFlow Serving, with
`Authorization: Bearer <token>`. `install.sh` made a token in `serve.env` (readable by you only; it is never printed).

Start at boot, as a user of its own that may use the camera and nothing else, from a root-owned copy:

    sudo useradd --system --no-create-home --shell /usr/sbin/nologin --groups video edgekit   # once
    sudo cp -a . {folder} && sudo chown -R root:root {folder}
    sudo cp {folder}/{name}-serve.service /etc/systemd/system/ && sudo systemctl enable --now {name}-serve

The unit is sandboxed (NoNewPrivileges, ProtectSystem=strict, PrivateTmp, no home directories) and capped
(MemoryMax=75% of RAM, LimitNOFILE=1024); SIGTERM drains requests and releases the camera within TimeoutStopSec.
"""

TRACKING_RUN = """    # ids across frames, a counting line
    .venv/bin/python run.py --source 0 --track --count-line 320,0,320,480
"""

SERVICE = """[Unit]
Description=edgekit {role} ({name})
After=network-online.target

[Service]
Type=simple
WorkingDirectory={folder}
# the source, threshold, tracking and counting line come from {folder}/config.json
ExecStart={folder}/.venv/bin/python {folder}/run.py --output {folder}/results.jsonl
Restart=on-failure
RestartSec=5
User={user}

[Install]
WantedBy=multi-user.target
"""

README = """# {name}

A runtime-only bundle made by edgekit {version}: `{model}` with its preprocessing, labels and
quantization embedded, run by `runtimes` (numpy, OpenCV and {runtime}). No TensorFlow.

Labels: {labels}

## Install (Raspberry Pi OS bookworm, 64-bit, Python 3.11)

    sudo apt install -y python3-venv python3-picamera2   # picamera2 only for the Pi camera
    ./install.sh                                          # venv with --system-site-packages
    .venv/bin/python doctor.py                            # what is installed, what is missing

`install.sh` and `run.py` first check every shipped file against `MANIFEST.sha256` and refuse a
damaged copy (SD cards and interrupted transfers flip and cut bytes): `sha256sum -c MANIFEST.sha256`
shows which file. Copy the bundle again when it fails.

## Settings

`config.json` holds what run.py, serve.py and the services start with: `source` (picamera2, a webcam index, a
video, an rtsp:// URL), `threshold`, `top_k` for classifiers, and for detectors `iou`, `max_detections`,
`agnostic`, `track` and `count_line` ("x0,y0,x1,y1" in source pixels; "in" is the line's right-hand side going
from the first point to the second, drawn as an arrow). The keys are the flags' names (`--max-detections` is
`max_detections`).
Edit it and restart the service; a flag on the command line still wins. Now: {config}

## Run

    .venv/bin/python run.py                               # as config.json says
    .venv/bin/python run.py --source picamera2            # Pi camera; 0 for a USB webcam
    .venv/bin/python run.py --source clip.mp4 --save annotated.mp4
    .venv/bin/python run.py --source photos/ --threshold 0.6 --output results.jsonl
{task_runs}
Each result is one JSON line: {record_help}.

## Start at boot

    sed -i "s#{folder}#$PWD#g; s#User=pi#User=$USER#" {name}.service
    sudo cp {name}.service /etc/systemd/system/ && sudo systemctl enable --now {name}
    journalctl -u {name} -f
"""
