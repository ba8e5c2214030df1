/* hexdigit.h - the value of one hexadecimal digit, for percent-decoding paths. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_HEXDIGIT_H
#define GF_HEXDIGIT_H

/* The value 0..15 of the hexadecimal digit c ('0'-'9', 'a'-'f', 'A'-'F'; the C locale's, as an
 * unsigned char or EOF), or -1 when c is no such digit. */
static inline int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
