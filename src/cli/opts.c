/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "opts.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "../lib/util.h"
#include "cli.h"

int opts_other(int c, char **argv, const char *verb, const char *usage_line, const char *usage)
{
        if (c == OPTS_HELP) {
                printf("Usage: %s %s %s\n\n%s", vs_program, verb, usage_line, usage);
                return 0;
        }
        if (c == ':')
                return fail(EXIT_USAGE, verb, "%s needs a value", argv[optind - 1]);
        return fail(EXIT_USAGE, verb, "unknown option %s (see %s help %s)", argv[optind - 1],
                    vs_program, verb);
}

int opts_parse(int argc, char **argv, const char *verb, unsigned allowed, const char *usage_line,
               const char *usage, Opts *o)
{
        static const struct option all[] = {
            {"root-dir", required_argument, NULL, 'R'},
            {"json", no_argument, NULL, 'j'},
            {"force", no_argument, NULL, 'f'},
            {"all", no_argument, NULL, 'a'},
            {"autostart", no_argument, NULL, 'A'},
            {"timeout", required_argument, NULL, 'T'},
            {"tty", no_argument, NULL, 't'},
            {"save", no_argument, NULL, 's'},
            {"watch", no_argument, NULL, 'w'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        static const struct {
                int c;
                unsigned bit;
        } bits[] = {{'R', O_ROOT_DIR}, {'j', O_JSON},      {'f', O_FORCE},
                    {'a', O_ALL},      {'A', O_AUTOSTART}, {'T', O_TIMEOUT},
                    {'t', O_TTY},      {'s', O_SAVE},      {'w', O_WATCH}};
        *o = (Opts){.timeout = -1};
        optind = 1;
        opterr = 0;
        int c;
        /* "-" keeps operands in order while options may come anywhere */
        while ((c = getopt_long(argc, argv, ":t", all, NULL)) != -1) {
                for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
                        if (bits[i].c == c && !(allowed & bits[i].bit)) {
                                opts_other('?', argv, verb, usage_line, usage);
                                return -1;
                        }
                switch (c) {
                case 'R':
                        o->root_dir = optarg;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 'f':
                        o->force = true;
                        break;
                case 'a':
                        o->all = true;
                        break;
                case 'A':
                        o->autostart = true;
                        break;
                case 't':
                        o->tty = true;
                        break;
                case 's':
                        o->save = true;
                        break;
                case 'w':
                        o->watch = true;
                        break;
                case 'T': {
                        unsigned long long n;
                        if (vs_parse_u64(optarg, &n) < 0 || n > 3600) {
                                fail(EXIT_USAGE, verb,
                                     "--timeout \"%s\" is not a number of seconds (0 to 3600)",
                                     optarg);
                                return -1;
                        }
                        o->timeout = (long)n;
                        break;
                }
                default:
                        /* --help: 1 (printed), the rest: -1 (said) */
                        return opts_other(c, argv, verb, usage_line, usage) == 0 ? 1 : -1;
                }
        }
        o->optind = optind;
        return 0;
}
