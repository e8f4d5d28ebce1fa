/* The loaded configuration's lifetime and lookups: freeing every part config.c and its
 * section files allocate, and finding a provider or listener by name. Apart from the parser so
 * that config.c holds only the reading of the file. */
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "config.h"
#include "config_internal.h"

void config_free(struct config **cfgp)
{
    struct config *cfg = cfgp ? *cfgp : NULL;
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listener_conf *l = &cfg->listeners[i];
        free(l->name);
        free(l->address);
        free(l->banner);
        free(l->hostname);
        cidr_list_free(&l->allow);
    }
    for (size_t i = 0; i < cfg->n_providers; i++) {
        config_free_provider(&cfg->providers[i]);
    }
    for (size_t i = 0; i < cfg->n_domains; i++)
        config_free_domain(&cfg->domains[i]);
    free(cfg->domains);
    free(cfg->listeners);
    free(cfg->providers);
    free(cfg->gateway.state_dir);
    free(cfg->gateway.secret_key_file);
    free(cfg->gateway.user);
    cidr_list_free(&cfg->gateway.allow);
    cidr_list_free(&cfg->gateway.metrics_allow);
    config_free_strlist(&cfg->gateway.resolver);
    free(cfg->gateway.default_domain);
    free(cfg->gateway.audit_log);
    free(cfg->gateway.public_url);
    free(cfg->tls.certificate);
    free(cfg->tls.private_key);
    free(cfg->tls.ecdsa_certificate);
    free(cfg->tls.ecdsa_private_key);
    free(cfg->tls.ciphers);
    free(cfg->path);
    free(cfg);
    *cfgp = NULL;
}

const struct provider_conf *config_provider(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_providers; i++) {
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    }
    return NULL;
}

const struct listener_conf *config_listener(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_listeners; i++) {
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    }
    return NULL;
}
