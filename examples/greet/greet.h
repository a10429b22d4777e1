#ifndef GREET_H
#define GREET_H
const char *greet_message(const char *name);
int greet_count(void);
#endif
