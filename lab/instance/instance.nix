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
    "forge_bot_token"
    "forge_member_token"
    "forge_outsider_token"
    "drone_api_token"
  ];
  # The lab polls faster than cc-ci's 30 s, so that a !testme is picked up in seconds.
  bridgePollSeconds = 2;
}
