{
  description = "cc-ci: continuous integration for Co-op Cloud recipes (lab stand-in built without nixpkgs)";

  # Submodule layout: the instance repo is checked out at ./secrets; build with ?submodules=1.
  outputs = { self }:
    let
      instance = import ./secrets/instance.nix;
    in
    {
      nixosConfigurations.cc-ci = import ./nix/system.nix {
        inherit instance;
        secretsFile = ./secrets/secrets.yaml;
      };
    };
}
