# Hostile: reach a listener on the host's 127.0.0.1 over TCP and UDP.
import socket

TCP_PORT = int("@TCP_PORT@")
UDP_PORT = int("@UDP_PORT@")

try:
    with socket.create_connection(("127.0.0.1", TCP_PORT), timeout=2) as conn:
        conn.sendall(b"LEAK over tcp")
    print("tcp: connected")
except OSError as error:
    print("tcp: blocked:", error)
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"LEAK over udp", ("127.0.0.1", UDP_PORT))
    print("udp: sent")
except OSError as error:
    print("udp: blocked:", error)
