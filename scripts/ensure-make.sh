# Sourced by run.sh and test.sh: a fresh machine may lack make; install it from Debian.
if ! command -v make >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq make >/dev/null
fi
