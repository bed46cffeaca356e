#!/bin/bash
# Minimal stand-in for ovn-controller on devcloud's fake chassis (part of the emulated
# hypervisor; there is no datapath):
#  * claims SB Port_Bindings whose requested-chassis is our chassis (what ovn-controller does
#    when a VIF appears) -> northd sets LSP up=true -> neutron marks the port ACTIVE and
#    sends network-vif-plugged to nova;
#  * releases them when the requested chassis changes (port unbound/moved);
#  * mirrors SB_Global.nb_cfg into Chassis_Private (the agent heartbeat neutron checks).
# Env: OVN_SB_DB (unix:...ovnsb_db.sock), DEVCLOUD_CHASSIS (chassis name == nova host).
: "${OVN_SB_DB:?}" "${DEVCLOUD_CHASSIS:?}"
export OVN_SB_DB
CH=$DEVCLOUD_CHASSIS
last=-1
while true; do
  for lp in $(ovn-sbctl --bare --columns logical_port find Port_Binding 'type=""' 'chassis=[]' "options:requested-chassis=$CH" 2>/dev/null); do
    ovn-sbctl lsp-bind "$lp" "$CH" 2>/dev/null && echo "$(date +%T) bound $lp"
  done
  chuuid=$(ovn-sbctl --bare --columns _uuid find Chassis "name=$CH" 2>/dev/null)
  if [ -n "$chuuid" ]; then
    ovn-sbctl --bare --columns logical_port,options find Port_Binding "chassis=$chuuid" 'type=""' 2>/dev/null |
    awk 'NF==0{next} !lp{lp=$1; next} {print lp, $0; lp=""}' |
    while read -r lp opts; do
      case "$opts" in *"requested-chassis=$CH"*) ;; *) ovn-sbctl lsp-unbind "$lp" && echo "$(date +%T) released $lp";; esac
    done
  fi
  cfg=$(ovn-sbctl get SB_Global . nb_cfg 2>/dev/null)
  if [ -n "$cfg" ] && [ "$cfg" != "$last" ]; then
    ovn-sbctl set Chassis_Private "$CH" "nb_cfg=$cfg" "nb_cfg_timestamp=$(($(date +%s%N)/1000000))" && last=$cfg
  fi
  sleep 0.5
done
