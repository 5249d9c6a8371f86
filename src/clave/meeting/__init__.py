"""One participant's meeting state machine (sans-I/O).

Admission, roles, policy, epochs -> SFrame keys, security code, chat.
"""
