# The whole machine as one derivation. With no nixpkgs offline, the builder is /bin/sh and
# the programs it wires together come from the image; the store path still depends on every
# input below, so both repos' content decides it.
{ instance, secretsFile }:
{
  config.system.build.toplevel = derivation {
    name = "nixos-system-cc-ci";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ ./build-toplevel.sh ];
    PATH = "/usr/bin:/bin";
    systemTree = ../system;
    servicesTree = ../services;
    ciTree = ../ci;
    testsTree = ../tests;
    sopsInstallSecrets = ../pkgs/sops-install-secrets.py;
    inherit secretsFile;
    domain = instance.domain;
    secretNames = builtins.concatStringsSep " " instance.secrets;
    # How often the bridge polls the forge for !testme comments; an instance may set it.
    bridgePollSeconds = toString (instance.bridgePollSeconds or 30);
  };
}
