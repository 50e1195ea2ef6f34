# This deployment's facts. The base repo holds none of them.
{
  domain = "@DOMAIN@";
  secrets = [
    "wildcard_cert"
    "wildcard_key"
    "drone_oauth_client_id"
    "drone_oauth_client_secret"
    "drone_rpc_secret"
    "webhook_hmac"
    "registry_credentials"
  ];
}
