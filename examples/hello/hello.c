#include <stdio.h>
#include "greet.h"

static int shout(const char *text)
{
    return puts(text);
}

int main(int argc, char **argv)
{
    shout(greet_message(argc > 1 ? argv[1] : "world"));
    return greet_count() == 1 ? 0 : 1;
}
