{
  description = "cc-ci: continuous integration for Co-op Cloud recipes (lab stand-in built without nixpkgs)";

  # Flake-input layout: the instance repo is an input, pinned in flake.lock.
  inputs.instance = {
    # Nix 2.8 assumes "master" unless told.
    url = "git+@INSTANCE_URL@?ref=main";
    flake = false;
  };

  outputs = { self, instance }:
    {
      nixosConfigurations.cc-ci = import ./nix/system.nix {
        instance = import "${instance}/instance.nix";
        secretsFile = "${instance}/secrets.yaml";
      };
    };
}
