# Hostile, bounded: one allocation far over the memory limit.
data = bytearray(8 * 1024**3)
print("allocated", len(data))
