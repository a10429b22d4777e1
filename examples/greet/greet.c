#include <stdio.h>
#include "greet.h"

static int calls;
static char buffer[256];

static const char *format_greeting(const char *name)
{
    snprintf(buffer, sizeof buffer, "Hello, %s!", name);
    return buffer;
}

const char *greet_message(const char *name)
{
    calls++;
    return format_greeting(name);
}

int greet_count(void)
{
    return calls;
}
