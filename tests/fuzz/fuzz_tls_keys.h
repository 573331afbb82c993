/*
 * Fixed TLS keys for tests/fuzz/fuzz_tls.c, made once with OpenSSL 3.0 and
 * valid until 2126 (nothing here checks their dates but the chain's):
 *
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
 *       -keyout server.key -out server.pem -subj "/CN=fived.example" -days 36500
 *   openssl req -x509 -newkey ed25519 -nodes \
 *       -keyout client.key -out client.pem -subj "/CN=alice" -days 36500
 *
 * FUZZ_TLS_CLIENT_FP is the client certificate's tls_clients fingerprint:
 *
 *   openssl pkey -in client.key -pubout -outform DER |
 *       openssl dgst -sha256 -binary | base64 | tr -d =
 *
 * Test keys: they protect nothing.
 */
#ifndef FIVE_TESTS_FUZZ_TLS_KEYS_H
#define FIVE_TESTS_FUZZ_TLS_KEYS_H

static const char FUZZ_TLS_SERVER_CERT[] =
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBhjCCAS2gAwIBAgIUdtqqpOPIHm2zNBz3qXDLGHLsx58wCgYIKoZIzj0EAwIw\n"
        "GDEWMBQGA1UEAwwNZml2ZWQuZXhhbXBsZTAgFw0yNjEyMDYxOTQ2MjVaGA8yMTI2\n"
        "MTExMjE5NDYyNVowGDEWMBQGA1UEAwwNZml2ZWQuZXhhbXBsZTBZMBMGByqGSM49\n"
        "AgEGCCqGSM49AwEHA0IABFzIIagUqHQ8WHKbuFSv0kUws1pbMYks1/7U1mLfHlsM\n"
        "dq9YcCtwMsNA0TLpsusNl4AtJrqeC+YahXnTxzFlDeWjUzBRMB0GA1UdDgQWBBSa\n"
        "lN1aqz3PHvZbEAnhRP3VI1w09jAfBgNVHSMEGDAWgBSalN1aqz3PHvZbEAnhRP3V\n"
        "I1w09jAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIGzPx+jy2PXl\n"
        "mjlpUaQGVNuf+3EvDauLvUenFAaedNWVAiBCAhxPqGD4lRfUyYJFWe0NQFgL0Tsu\n"
        "c6Htgghc/Er90w==\n"
        "-----END CERTIFICATE-----\n";

static const char FUZZ_TLS_SERVER_KEY[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglVqPJdw8xbwnQte+\n"
        "bpEza3FtdhfVOBnlWrAE4o+N1luhRANCAARcyCGoFKh0PFhym7hUr9JFMLNaWzGJ\n"
        "LNf+1NZi3x5bDHavWHArcDLDQNEy6bLrDZeALSa6ngvmGoV508cxZQ3l\n"
        "-----END PRIVATE KEY-----\n";

static const char FUZZ_TLS_CLIENT_CERT[] =
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBNjCB6aADAgECAhR2+VAvqDaKiSnPzEJcGeX0RvCU5zAFBgMrZXAwEDEOMAwG\n"
        "A1UEAwwFYWxpY2UwIBcNMjYxMjA2MTk0NjIzWhgPMjEyNjExMTIxOTQ2MjNaMBAx\n"
        "DjAMBgNVBAMMBWFsaWNlMCowBQYDK2VwAyEAKKT2WkiLEZD/1O8dvFQDvwsWjpeB\n"
        "K07zRn88u9ZVlHSjUzBRMB0GA1UdDgQWBBRXMv5D+vjymL0Sy21dCfPgH64vCDAf\n"
        "BgNVHSMEGDAWgBRXMv5D+vjymL0Sy21dCfPgH64vCDAPBgNVHRMBAf8EBTADAQH/\n"
        "MAUGAytlcANBAEkRiG2hwdiPN/sfpxBQMt6MDYoTNSSOxaoH7Yka4Px6/HR+Gzb1\n"
        "2z0WpiWvM4bhcVAJa0W2LzPLMLJtIb5aSQs=\n"
        "-----END CERTIFICATE-----\n";

static const char FUZZ_TLS_CLIENT_KEY[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEII2DtCbv9A1GmX062d8+8Sxx+gAEPeO9AdcjTtZZ7pyJ\n"
        "-----END PRIVATE KEY-----\n";

#define FUZZ_TLS_CLIENT_FP "SHA256:+WtxSqAz9w4SyVtSgHOxw1K1+BZVnkm7+bZiaiPH3+s"

#endif
