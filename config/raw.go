package config

// The raw* structs are the schema of the file: go-toml decodes into them with
// unknown keys disallowed. Every leaf is `any` on purpose: go-toml stops at
// the first value it cannot store, while sluice wants to report every problem
// at once, so values are checked and converted by the checker instead, which
// records an *Error per bad key and carries on. nil means "absent" (TOML has
// no null).
//
// The toml tags are the public key names (DESIGN.md, "Public contract");
// example_test.go fails when one is missing from config.example.toml.

type rawConfig struct {
	Hostname        any           `toml:"hostname"`
	DataDir         any           `toml:"data_dir"`
	ShutdownTimeout any           `toml:"shutdown_timeout"`
	SMTP            rawSMTP       `toml:"smtp"`
	DNS             rawDNS        `toml:"dns"`
	Delivery        rawDelivery   `toml:"delivery"`
	Bounce          rawBounce     `toml:"bounce"`
	Admin           rawAdmin      `toml:"admin"`
	Log             rawLog        `toml:"log"`
	QuotaStore      rawQuotaStore `toml:"quota_store"`
	Operators       []rawOperator `toml:"operator"`
	Default         rawLimits     `toml:"default"`
	Routes          []rawRoute    `toml:"route"`
	DKIM            []rawDKIM     `toml:"dkim"`
}

type rawSMTP struct {
	Listen              any `toml:"listen"`
	TrustedNetworks     any `toml:"trusted_networks"`
	MaxMessageBytes     any `toml:"max_message_bytes"`
	MaxRecipients       any `toml:"max_recipients"`
	MaxLineLength       any `toml:"max_line_length"`
	MaxConnections      any `toml:"max_connections"`
	ReadTimeout         any `toml:"read_timeout"`
	WriteTimeout        any `toml:"write_timeout"`
	PriorityHeader      any `toml:"priority_header"`
	MaxPriority         any `toml:"max_priority"`
	StripPriorityHeader any `toml:"strip_priority_header"`
	TLSCertFile         any `toml:"tls_cert_file"`
	TLSKeyFile          any `toml:"tls_key_file"`
}

type rawDNS struct {
	Servers any `toml:"servers"`
	Timeout any `toml:"timeout"`
}

type rawDelivery struct {
	Port              any `toml:"port"`
	HELO              any `toml:"helo"`
	ConnectTimeout    any `toml:"connect_timeout"`
	CommandTimeout    any `toml:"command_timeout"`
	DataTimeout       any `toml:"data_timeout"`
	RetrySchedule     any `toml:"retry_schedule"`
	MaxQueueLifetime  any `toml:"max_queue_lifetime"`
	DelayWarningAfter any `toml:"delay_warning_after"`
	AllowPrivateMX    any `toml:"allow_private_mx"`
	MaxConnections    any `toml:"max_connections"`
	MaxMXHosts        any `toml:"max_mx_hosts"`
}

type rawBounce struct {
	From             any `toml:"from"`
	MaxReturnedBytes any `toml:"max_returned_bytes"`
}

type rawAdmin struct {
	Socket        any `toml:"socket"`
	MetricsListen any `toml:"metrics_listen"`
}

type rawLog struct {
	Format any `toml:"format"`
	Level  any `toml:"level"`
}

type rawQuotaStore struct {
	Backend        any `toml:"backend"`
	RedisURL       any `toml:"redis_url"`
	OnStoreError   any `toml:"on_store_error"`
	ExpectedRelays any `toml:"expected_relays"`
	MaxClockSkew   any `toml:"max_clock_skew"`
	Timeout        any `toml:"timeout"`
}

// rawLimits is embedded in rawOperator and rawRoute and is [default] itself;
// go-toml flattens embedded structs, so its keys sit beside name and domains.
type rawLimits struct {
	Quota                       any               `toml:"quota"`
	Window                      any               `toml:"window"`
	Timezone                    any               `toml:"timezone"`
	MaxConnections              any               `toml:"max_connections"`
	RateDelay                   any               `toml:"rate_delay"`
	MaxRecipientsPerTransaction any               `toml:"max_recipients_per_transaction"`
	MaxMessagesPerConnection    any               `toml:"max_messages_per_connection"`
	RefundRejected              any               `toml:"refund_rejected"`
	PriorityAging               any               `toml:"priority_aging"`
	MaxBacklogWindows           any               `toml:"max_backlog_windows"`
	WindowGuard                 any               `toml:"window_guard"`
	EnvelopeFrom                any               `toml:"envelope_from"`
	VERP                        any               `toml:"verp"`
	TLS                         any               `toml:"tls"`
	TLSVerify                   any               `toml:"tls_verify"`
	ResponseRules               []rawResponseRule `toml:"response_rule"`
}

type rawResponseRule struct {
	Match    any `toml:"match"`
	Code     any `toml:"code"`
	Action   any `toml:"action"`
	Duration any `toml:"duration"`
}

type rawOperator struct {
	Name       any `toml:"name"`
	Domains    any `toml:"domains"`
	MXPatterns any `toml:"mx_patterns"`
	rawLimits
}

type rawRoute struct {
	Domains any `toml:"domains"`
	Relay   any `toml:"relay"`
	rawLimits
}

type rawDKIM struct {
	Domain         any `toml:"domain"`
	Selector       any `toml:"selector"`
	PrivateKeyFile any `toml:"private_key_file"`
}
