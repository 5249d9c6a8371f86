# Sourced by demo.sh and test.sh (from the checkout's root): make sure .venv exists
# with pip in it. On Debian `python3 -m venv` fails until python3-venv (ensurepip)
# is installed: install it then and try again. Re-running venv over a half-made
# .venv (no pip) completes it.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export DEBIAN_FRONTEND=noninteractive
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    if ! python3 -m venv .venv; then
        echo "python3 -m venv failed: installing python3-venv and trying again" >&2
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3-venv
        python3 -m venv .venv
    fi
fi
