"""The control plane: the command registry behind ``/.nexus/ctl`` and the control socket
(commands), the socket server (server), who a socket peer is (peer), the client and the nexus
subcommands that use it (client, cli_commands), the per-handle logic of the ctl file (ctlfile)
and the text renderings (render). docs/control-protocol.md describes the protocols."""
