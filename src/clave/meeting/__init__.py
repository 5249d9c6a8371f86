"""One participant's meeting state machine (sans-I/O): admission, roles, policy, epochs -> SFrame keys, security code, chat."""
