/* instance_cli.h - the --instance option shared by simplecached, webproxy and gfmon. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_INSTANCE_CLI_H
#define GF_INSTANCE_CLI_H

/* Makes arg this process's instance (ipc_instance_set); a name outside IPC_INSTANCE_RULE is a
 * usage error: one line naming the rule, the "Try --help" line, exit 2. */
void instance_cli_option(const char *prog, const char *arg);

#endif
