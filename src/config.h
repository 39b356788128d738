/* config.h — the configuration of a client: every option of smsend.new (from options.def), its
 * defaults, the environment fallback, the checks, and a private copy to compare and wipe.
 * Plain C, no Lua: the binding reads Lua values into a struct client_config with these calls. */
#ifndef SMSEND_CONFIG_H
#define SMSEND_CONFIG_H

#include <stddef.h>
#include "fields.h" /* struct field_str */
#include "phone.h"

#define SMSEND_DEFAULT_BASE_URL "https://app.gateway.smsend.it/API/v1.0/REST/"

enum auth_mode { AUTH_SESSION = 0, AUTH_TOKEN = 1 };
enum guard_fail { GUARD_FAIL_CLOSED = 0, GUARD_FAIL_OPEN = 1 };

enum option_kind { OPTION_STRING, OPTION_SECRET, OPTION_CREDENTIAL, OPTION_SECONDS, OPTION_INTEGER, OPTION_ENUM };

/* CONFIG_OPT_<name>: an option's index in config_options[]. */
enum config_option {
#define OPT(name, kind, def, env, check) CONFIG_OPT_##name,
#include "options.def"
#undef OPT
    CONFIG_NOPTIONS
};

/* How each kind is held: strings as byte ranges (p == NULL: not given), numbers as the double
 * Lua gave (INTEGER ones are whole after the check), enums as the word's index. */
#define OPTION_CTYPE_STRING struct field_str
#define OPTION_CTYPE_SECRET struct field_str
#define OPTION_CTYPE_CREDENTIAL struct field_str
#define OPTION_CTYPE_SECONDS double
#define OPTION_CTYPE_INTEGER double
#define OPTION_CTYPE_ENUM int

/* A set of options, bit i for config_options[i]. */
typedef unsigned long config_mask;
#define CONFIG_BIT(i) ((config_mask)1 << (i))
_Static_assert(CONFIG_NOPTIONS <= 32, "config_mask holds every option");

/* Everything smsend.new accepts. The strings belong to the caller (Lua strings, the environment)
 * or to a struct config_copy; each is NUL-terminated at p[n], as all of those are. */
struct client_config {
#define OPT(name, kind, def, env, check) OPTION_CTYPE_##kind name;
#include "options.def"
#undef OPT
};

/* One option as options.def describes it. */
struct option_info {
    const char *name;
    size_t name_len;
    enum option_kind kind;
    size_t offset;            /* of its member in struct client_config */
    const char *env;          /* NULL: none */
    const char *str_default;  /* strings; NULL: none */
    double num_default;       /* numbers and enums */
    const char *(*check_str)(const char *p, size_t n);
    const char *(*check_num)(double v);
    const char *const *words; /* enums: NULL-terminated */
};

extern const struct option_info config_options[CONFIG_NOPTIONS];

/* Numbers and enums at their defaults, no string given. */
void config_init(struct client_config *cfg);

/* The index of the option called name[0..n), or -1. */
int config_find(const char *name, size_t n);

/* Sets option i (a string kind / a number kind / an enum from its word). config_set_enum
 * returns -1 for a word that is not one of the option's, with the message in err. */
void config_set_string(struct client_config *cfg, int i, const char *p, size_t n);
void config_set_number(struct client_config *cfg, int i, double v);
int config_set_enum(struct client_config *cfg, int i, const char *p, size_t n, char *err, size_t errlen);

/* After the caller's options: the environment fallback, then the defaults of the strings still
 * not given. Returns -1 with a message in err and the option's name in field for a variable that
 * is set but empty (an empty credential variable counts as unset). The strings taken from the
 * environment stay valid as long as it does. */
int config_finish(struct client_config *cfg, char *err, size_t errlen, char *field, size_t fieldlen);

/* What the checks work out on the way, for building the client. */
struct config_parsed {
    struct phone_countries countries; /* from allowed_countries */
    int clear_text;                   /* base_url is http:// (loopback only) */
};

/* Checks a finished configuration, every option and their combinations. Returns 0 with out
 * filled, or -1 with a message in err and the offending option's name in field. */
int config_parse(const struct client_config *cfg, struct config_parsed *out, char *err, size_t errlen, char *field,
                 size_t fieldlen);

/* 1 when option i is the same in a and b (secret kinds compared in constant time). */
int config_option_equal(const struct client_config *a, const struct client_config *b, int i);
/* 1 when every option is the same. */
int config_equal(const struct client_config *a, const struct client_config *b);
/* 1 when every option in the set is the same (the others are not looked at). */
int config_equal_in(const struct client_config *a, const struct client_config *b, config_mask set);

/* A configuration whose strings live in one private block, wiped when freed (it holds secrets). */
struct config_copy {
    struct client_config cfg;
    char *blob;
    size_t size;
};

int config_copy_make(struct config_copy *dst, const struct client_config *src);
/* 1 when option i of c is held in c's own block (or is not a string given at all). */
int config_copy_owns(const struct config_copy *c, int i);
void config_copy_free(struct config_copy *c);

#endif
