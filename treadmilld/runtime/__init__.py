"""The async runtime every layer shares: no bleak, no aiomqtt, nothing of treadmills."""
