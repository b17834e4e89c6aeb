#ifndef DL_CONFIG_H
#define DL_CONFIG_H

/* `dockless-helper OP --config-fd N`: replaces ARGV with OP's arguments read from
 * descriptor N, each NUL-terminated (native/PROTOCOL.md). The descriptor stays open
 * (a pipe becomes a sealed memfd at the same number) so that a re-exec'd helper
 * reads the same arguments. Any other argv is left as it is. */
void dl_config_argv(int *argc, char ***argv);

#endif
