#ifndef GREET_H
#define GREET_H
/* The library builds with -fvisibility=hidden: the API is what this marks (and greet.exports lists). */
#if defined(__GNUC__)
#define GREET_API __attribute__((visibility("default")))
#else
#define GREET_API
#endif
GREET_API const char *greet_message(const char *name);
GREET_API int greet_count(void);
#endif
