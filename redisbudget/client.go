package redisbudget

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// URL schemes accepted by New (documented at Options.URL), and the go-redis
// settings newClient forces whatever the URL says.
const (
	schemeRedis       = "redis"
	schemeRedisTLS    = "rediss"
	schemeUnix        = "unix"
	schemeSentinel    = "redis-sentinel"
	schemeSentinelTLS = "rediss-sentinel"
	schemeCluster     = "redis-cluster"
	schemeClusterTLS  = "rediss-cluster"
	noResend          = -1 // go-redis: -1 disables retries and redirects
	singleDialAttempt = 1  // go-redis: dial once per call, no backoff loop
)

// newClient builds the go-redis client for rawURL with every timeout set
// to timeout.
func newClient(rawURL string, timeout time.Duration) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, parseError(err)
	}
	switch u.Scheme {
	case schemeRedis, schemeRedisTLS, schemeUnix:
		return newSingle(rawURL, timeout)
	case schemeSentinel, schemeSentinelTLS:
		return newSentinel(u, timeout)
	case schemeCluster, schemeClusterTLS:
		return newCluster(u, timeout)
	default:
		return nil, fmt.Errorf("%w: scheme %q is not one of redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster, rediss-cluster",
			ErrBadURL, u.Scheme)
	}
}

func newSingle(rawURL string, timeout time.Duration) (redis.UniversalClient, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, parseError(err)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = noResend
	o.DialerRetries = singleDialAttempt
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(o), nil
}

func newSentinel(u *url.URL, timeout time.Duration) (redis.UniversalClient, error) {
	o, err := redis.ParseFailoverURL(withScheme(u, strings.TrimSuffix(u.Scheme, "-sentinel")))
	if err != nil {
		return nil, parseError(err)
	}
	if o.MasterName == "" {
		return nil, fmt.Errorf("%w: redis-sentinel URL needs a master_name parameter", ErrBadURL)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = noResend
	o.DialerRetries = singleDialAttempt
	o.DisableIdentity = true
	return redis.NewFailoverClient(o), nil
}

func newCluster(u *url.URL, timeout time.Duration) (redis.UniversalClient, error) {
	o, err := redis.ParseClusterURL(withScheme(u, strings.TrimSuffix(u.Scheme, "-cluster")))
	if err != nil {
		return nil, parseError(err)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = noResend
	// Without redirects a MOVED or ASK reply during resharding fails one
	// call (an outage of one call for the caller) and go-redis reloads the
	// slot map; following it could run a script twice after a lost reply.
	o.MaxRedirects = noResend
	o.DialerRetries = singleDialAttempt
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClusterClient(o), nil
}

// withScheme returns u's text with another scheme, for the go-redis
// parsers, which only know redis and rediss.
func withScheme(u *url.URL, scheme string) string {
	c := *u
	c.Scheme = scheme
	return c.String()
}

// parseError wraps a URL parse error, keeping only its reason. Both
// net/url and go-redis quote pieces of the URL in their messages (a port, a
// path, a database number, an escape), and in a malformed URL any of those
// pieces may hold the password, so everything after the reason is dropped:
// "redis: invalid URL path: /x@y" becomes "invalid URL path".
func parseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %s", ErrBadURL, parseReason(err.Error()))
}

// parseReason returns msg without its library prefix and without anything
// from its first colon or quote on.
func parseReason(msg string) string {
	msg = strings.TrimPrefix(msg, "redis: ")
	msg = strings.TrimPrefix(msg, "net/url: ")
	if i := strings.IndexAny(msg, ":\"'`"); i >= 0 {
		msg = msg[:i]
	}
	if msg = strings.TrimSpace(msg); msg == "" {
		return "cannot parse it"
	}
	return msg
}
